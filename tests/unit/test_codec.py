"""plumbing/codec.py: Avro single-object encoding (C3 01 + CRC-64-AVRO fingerprint + body)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from plumbing.codec import DecodeError, SchemaRegistry
from plumbing.config import REPO_ROOT

SCHEMAS = REPO_ROOT / "schemas"
CREATE = "coffer.instance.create_requested.v1"

# Independent CRC-64-AVRO (Rabin) fingerprint, as given in the Avro specification.
EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def create_requested() -> dict:
    return {
        "instance_id": "inst-1",
        "project_id": "proj-1",
        "name": "orders",
        "flavor": {"id": "m1.small", "ram_mb": 2048, "vcpus": 2, "disk_gb": 20},
        "volume_gb": 10,
        "datastore": "mysql",
        "datastore_version": "8.0",
        "availability_zone": "az2",
        "databases": [
            {"name": "shop", "character_set": "utf8mb4", "collate": None},
            {"name": "audit", "character_set": None, "collate": None},
        ],
        "users": [
            {"name": "alice", "host": "10.%", "databases": ["shop", "audit"]},
            {"name": "bob", "host": "%", "databases": []},
        ],
        "configuration": '{"max_connections": 200}',
        "restore_backup_id": "b-1",
        "restore_time": None,
        "replica_of": None,
        "access": '{"is_public": true, "allowed_cidrs": ["203.0.113.0/24"]}',
    }


@pytest.fixture(scope="module")
def reg() -> SchemaRegistry:
    return SchemaRegistry(SCHEMAS)


def test_crc64_avro_matches_spec_vector():
    # guards the helper itself: the Avro spec's fingerprint of the schema "null"
    assert crc64_avro(b'"null"').to_bytes(8, "little").hex() == "8a8f25cce724dd63"


def test_round_trip_of_nested_event(reg):
    data = create_requested()
    assert reg.decode(CREATE, reg.encode(CREATE, data)) == data


def test_header_is_magic_and_little_endian_fingerprint_of_canonical_form(reg):
    raw = json.loads((SCHEMAS / f"{CREATE}.avsc").read_text())
    canonical = to_parsing_canonical_form(raw).encode()
    value = reg.encode(CREATE, create_requested())
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == crc64_avro(canonical).to_bytes(8, "little")


def test_every_current_schema_has_its_own_fingerprint(reg):
    fps = {s.fingerprint for s in reg.current.values()}
    assert len(fps) == len(reg.current) >= 15


def test_encode_unknown_type_raises_key_error(reg):
    with pytest.raises(KeyError):
        reg.encode("coffer.nope.v1", {})


@pytest.mark.parametrize(
    "value",
    [b"", b"garbage, not avro at all", b"\xc3\x01\x00", b"\x00\x01" + bytes(20)],
    ids=["empty", "garbage", "short-header", "wrong-magic"],
)
def test_malformed_values_raise_decode_error(reg, value):
    with pytest.raises(DecodeError):
        reg.decode(CREATE, value)


def test_unknown_fingerprint_raises_decode_error(reg):
    value = reg.encode(CREATE, create_requested())
    bad = value[:2] + bytes(8) + value[10:]
    with pytest.raises(DecodeError, match="unknown writer schema"):
        reg.decode(CREATE, bad)


def test_truncated_body_raises_decode_error(reg):
    value = reg.encode(CREATE, create_requested())
    for cut in (10, 11, len(value) // 2, len(value) - 1):
        with pytest.raises(DecodeError):
            reg.decode(CREATE, value[:cut])


def test_type_mismatch_between_header_and_writer_schema_raises(reg):
    value = reg.encode(CREATE, create_requested())
    with pytest.raises(DecodeError, match=CREATE):
        reg.decode("coffer.instance.deleted.v1", value)


# --- schema evolution through schemas/released/ -----------------------------

EVT = "coffer.test.thing.v1"
OLD = {
    "type": "record",
    "name": "Thing",
    "namespace": "coffer.v1",
    "doc": "test",
    "fields": [{"name": "id", "type": "string"}],
}
NEW = {
    **OLD,
    "fields": OLD["fields"] + [{"name": "size", "type": "int", "default": 7}],
}


def write_dir(root: Path, current: dict, released: dict | None = None) -> Path:
    root.mkdir()
    (root / f"{EVT}.avsc").write_text(json.dumps(current))
    (root / "released").mkdir()
    if released is not None:
        (root / "released" / f"{EVT}@1.avsc").write_text(json.dumps(released))
    return root


def test_record_from_released_schema_decodes_with_default(tmp_path):
    old = SchemaRegistry(write_dir(tmp_path / "old", OLD))
    new = SchemaRegistry(write_dir(tmp_path / "new", NEW, released=OLD))
    value = old.encode(EVT, {"id": "x"})
    assert new.decode(EVT, value) == {"id": "x", "size": 7}
    # and the new writer's own records carry the new field
    assert new.decode(EVT, new.encode(EVT, {"id": "y", "size": 3})) == {"id": "y", "size": 3}


def test_record_from_unreleased_old_schema_is_unknown(tmp_path):
    old = SchemaRegistry(write_dir(tmp_path / "old", OLD))
    new = SchemaRegistry(write_dir(tmp_path / "new", NEW))  # old version not snapshotted
    with pytest.raises(DecodeError, match="unknown writer schema"):
        new.decode(EVT, old.encode(EVT, {"id": "x"}))
