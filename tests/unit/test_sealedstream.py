"""plumbing/sealedstream.py and backupkeys.py: compressed, encrypted backup streams."""
from __future__ import annotations

import hashlib
import os
import stat

import pytest

from plumbing import backupkeys
from plumbing.objectstore import LocalDirectoryStore
from plumbing.sealedstream import FRAME_HEADER, MAGIC, IntegrityError, Sealing, unseal


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def collect(stream) -> bytes:
    return b"".join([c async for c in stream])


def sample() -> list[bytes]:
    # compressible text and incompressible noise, past one frame
    return [b"INSERT INTO t VALUES (1, 'row');\n" * 100_000, os.urandom(5 * 1024 * 1024), b"tail"]


async def sealed_sample(key: bytes) -> tuple[bytes, Sealing, bytes]:
    parts = sample()
    sealing = Sealing(key)
    return await collect(sealing.seal(chunks(*parts))), sealing, b"".join(parts)


async def test_a_stream_round_trips_compressed_encrypted_and_checksummed():
    key = backupkeys.new_data_key()
    sealed, sealing, plain = await sealed_sample(key)
    assert sealing.sha256 == hashlib.sha256(plain).hexdigest() and sealing.plain_bytes == len(plain)
    assert sealed.startswith(MAGIC) and len(sealed) < len(plain)       # compressed
    assert b"INSERT INTO t" not in sealed                               # encrypted
    assert await collect(unseal(chunks(sealed), key, sealing.sha256)) == plain
    # any chunking of the object reads the same
    pieces = [sealed[i:i + 7777] for i in range(0, len(sealed), 7777)]
    assert await collect(unseal(chunks(*pieces), key, sealing.sha256)) == plain


async def test_an_object_cut_inside_its_magic_and_inside_every_frame_header_reads_the_same():
    key = backupkeys.new_data_key()
    sealed, sealing, plain = await sealed_sample(key)
    cuts, at = {3}, len(MAGIC)
    while at < len(sealed):  # the frames, as the layout has them: <u32 length><u8 last><ciphertext+tag>
        length, _last = FRAME_HEADER.unpack_from(sealed, at)
        cuts |= {at + 2, at + FRAME_HEADER.size, at + FRAME_HEADER.size + 1}
        at += FRAME_HEADER.size + length
    assert len(cuts) > 6  # past one frame
    bounds = [0, *sorted(cuts), len(sealed)]
    pieces = [sealed[start:end] for start, end in zip(bounds, bounds[1:])]
    assert await collect(unseal(chunks(*pieces), key, sealing.sha256)) == plain


async def test_tampering_truncation_a_wrong_key_or_checksum_are_detected():
    key = backupkeys.new_data_key()
    sealed, sealing, _plain = await sealed_sample(key)
    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 0x01
    first_length, _last = FRAME_HEADER.unpack_from(sealed, len(MAGIC))
    second_header_end = len(MAGIC) + 2 * FRAME_HEADER.size + first_length
    cases = {
        "ends after a frame's header": (sealed[:second_header_end], key, sealing.sha256),
        "altered byte": (bytes(flipped), key, sealing.sha256),
        "cut short": (sealed[:-100], key, sealing.sha256),
        "last frame dropped": (sealed[:len(sealed) // 2], key, sealing.sha256),
        "wrong key": (sealed, backupkeys.new_data_key(), sealing.sha256),
        "wrong checksum": (sealed, key, hashlib.sha256(b"other").hexdigest()),
        "not a backup": (b"garbage" * 10, key, sealing.sha256),
    }
    for what, (data, k, checksum) in cases.items():
        with pytest.raises(IntegrityError):
            await collect(unseal(chunks(data), k, checksum))
            pytest.fail(what)


async def test_an_empty_stream_round_trips():
    key = backupkeys.new_data_key()
    sealing = Sealing(key)
    sealed = await collect(sealing.seal(chunks()))
    assert await collect(unseal(chunks(sealed), key, sealing.sha256)) == b""
    bytewise = [sealed[i:i + 1] for i in range(len(sealed))]
    assert await collect(unseal(chunks(*bytewise), key, sealing.sha256)) == b""
    # its one frame is the last: a flag byte that still reads as true but is not 1 is an alteration too
    altered = bytearray(sealed)
    altered[len(MAGIC) + 4] = 0xFF
    with pytest.raises(IntegrityError):
        await collect(unseal(chunks(bytes(altered)), key, sealing.sha256))


async def test_sealed_objects_stream_through_the_store(tmp_path):
    store, key = LocalDirectoryStore(tmp_path), backupkeys.new_data_key()
    sealing = Sealing(key)
    await store.put("backups", "b-1/full", sealing.seal(chunks(*sample())), {"sha256": "x"})
    restored = await collect(unseal(store.get("backups", "b-1/full"), key, sealing.sha256))
    assert hashlib.sha256(restored).hexdigest() == sealing.sha256


def test_data_keys_are_wrapped_by_the_master_key_and_bound_to_their_backup():
    master, data_key = backupkeys.new_data_key(), backupkeys.new_data_key()
    wrapped = backupkeys.wrap(master, data_key, "backup-1")
    assert backupkeys.unwrap(master, wrapped, "backup-1") == data_key
    with pytest.raises(backupkeys.WrappedKeyError):
        backupkeys.unwrap(master, wrapped, "backup-2")
    with pytest.raises(backupkeys.WrappedKeyError):
        backupkeys.unwrap(backupkeys.new_data_key(), wrapped, "backup-1")


def test_the_master_key_comes_from_configuration_or_is_made_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COFFER_HOME", str(tmp_path))
    monkeypatch.delenv("COFFER_BACKUP_MASTER_KEY", raising=False)
    first = backupkeys.master_key()
    assert backupkeys.master_key() == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / "backup-master.key").stat().st_mode) == 0o600
    monkeypatch.setenv("COFFER_BACKUP_MASTER_KEY", "AAAA" * 11)   # 33 bytes
    with pytest.raises(ValueError):
        backupkeys.master_key()
    import base64
    configured = os.urandom(32)
    monkeypatch.setenv("COFFER_BACKUP_MASTER_KEY", base64.b64encode(configured).decode())
    assert backupkeys.master_key() == configured
