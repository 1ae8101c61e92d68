"""schemas/: every event schema is valid, named for its CloudEvents type, documented,
snapshotted in schemas/released/, and still able to read every released version."""
from __future__ import annotations

import json
import re
from pathlib import Path

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from plumbing.config import REPO_ROOT

SCHEMAS = REPO_ROOT / "schemas"
RELEASED = SCHEMAS / "released"
CURRENT = sorted(SCHEMAS.glob("*.avsc"))
SNAPSHOTS = sorted(RELEASED.glob("*.avsc"))
TYPE_RE = re.compile(r"^coffer(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$")
SNAPSHOT_RE = re.compile(r"^(?P<type>.+)@(?P<n>[1-9][0-9]*)$")


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def avro_parse(path: Path) -> avro.schema.Schema:
    return avro.schema.parse(path.read_text())


def compatibility(reader: avro.schema.Schema, writer: avro.schema.Schema):
    return ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)


def test_there_are_schemas_and_snapshots():
    assert len(CURRENT) >= 15
    assert len(SNAPSHOTS) >= len(CURRENT)


@pytest.mark.parametrize("path", CURRENT + SNAPSHOTS, ids=ids(CURRENT) + ids(SNAPSHOTS))
def test_schema_parses_with_fastavro_and_avro(path):
    raw = json.loads(path.read_text())
    fastavro.parse_schema(raw)
    assert avro_parse(path).type == "record"


@pytest.mark.parametrize("path", CURRENT, ids=ids(CURRENT))
def test_file_is_named_for_a_versioned_event_type_and_documented(path):
    assert TYPE_RE.match(path.stem), f"{path.name}: want <coffer...type>.vN.avsc"
    raw = json.loads(path.read_text())
    assert raw["type"] == "record"
    assert isinstance(raw.get("doc"), str) and raw["doc"].strip(), f"{path.name} has no doc"


@pytest.mark.parametrize("path", SNAPSHOTS, ids=ids(SNAPSHOTS))
def test_released_schema_is_still_readable_by_current_schema(path):
    match = SNAPSHOT_RE.match(path.stem)
    assert match, f"{path.name}: want <type>@<n>.avsc"
    current = SCHEMAS / f"{match['type']}.avsc"
    assert current.exists(), f"{path.name} has no current schema {current.name}"
    result = compatibility(reader=avro_parse(current), writer=avro_parse(path))
    assert result.compatibility is SchemaCompatibilityType.compatible, (
        f"{current.name} can no longer read records written with {path.name}: {result.messages}"
    )


@pytest.mark.parametrize("path", CURRENT, ids=ids(CURRENT))
def test_every_current_schema_has_a_released_snapshot(path):
    assert list(RELEASED.glob(f"{path.stem}@*.avsc")), (
        f"{path.name} is not snapshotted: copy it to schemas/released/{path.stem}@1.avsc"
    )


# --- the check above must actually catch breaking changes --------------------

RELEASED_CREATE = RELEASED / "coffer.instance.create_requested.v1@1.avsc"


def evolved(change) -> avro.schema.Schema:
    raw = json.loads(RELEASED_CREATE.read_text())
    change(raw)
    return avro.schema.parse(json.dumps(raw))


def test_adding_required_field_is_detected_as_breaking():
    reader = evolved(lambda s: s["fields"].append({"name": "tier", "type": "string"}))
    result = compatibility(reader=reader, writer=avro_parse(RELEASED_CREATE))
    assert result.compatibility is SchemaCompatibilityType.incompatible


def test_changing_a_field_type_is_detected_as_breaking():
    def change(s):
        next(f for f in s["fields"] if f["name"] == "volume_gb")["type"] = "string"

    result = compatibility(reader=evolved(change), writer=avro_parse(RELEASED_CREATE))
    assert result.compatibility is SchemaCompatibilityType.incompatible


def test_adding_field_with_default_is_compatible():
    reader = evolved(lambda s: s["fields"].append({"name": "tier", "type": "string", "default": "std"}))
    result = compatibility(reader=reader, writer=avro_parse(RELEASED_CREATE))
    assert result.compatibility is SchemaCompatibilityType.compatible


def test_a_heartbeat_of_an_older_agent_reads_with_the_new_fields_defaulted():
    import io
    writer = fastavro.parse_schema(json.loads((RELEASED / "coffer.telemetry.heartbeat.v1@1.avsc").read_text()))
    reader = fastavro.parse_schema(json.loads((SCHEMAS / "coffer.telemetry.heartbeat.v1.avsc").read_text()))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, {"instance_id": "i", "host": "h", "seq": 1, "sent_at": 0,
                                             "engine_up": True})
    buf.seek(0)
    read = fastavro.schemaless_reader(buf, writer, reader)
    assert (read["engine_stopped"], read["transactions_per_second"], read["cache_hit_ratio"],
            read["database_size_bytes"], read["cpu_percent"]) == (False, 0.0, None, 0, 0.0)


def test_an_active_record_of_an_older_provisioner_reads_without_accounts():
    """null accounts: the API keeps what the create request named."""
    import io
    writer = fastavro.parse_schema(json.loads((RELEASED / "coffer.instance.active.v1@1.avsc").read_text()))
    reader = fastavro.parse_schema(json.loads((SCHEMAS / "coffer.instance.active.v1.avsc").read_text()))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, {"instance_id": "i", "address": "a", "port": 1, "host": "h",
                                             "zone": "z"})
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, writer, reader)["accounts"] is None
