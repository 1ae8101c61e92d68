"""The Swift object store (plumbing/swiftstore.py) against a real Swift started here,
carrying a sealed backup stream."""
from __future__ import annotations

import hashlib
import os

import pytest

from plumbing import backupkeys, objectstore
from plumbing.objectstore import ObjectNotFound
from plumbing.sealedstream import IntegrityError, Sealing, unseal
from plumbing.swiftstore import SwiftStore, connect
from tests import swift as real_swift


@pytest.fixture(scope="module")
def swift(tmp_path_factory):
    server = real_swift.start(tmp_path_factory.mktemp("swift"))
    yield server
    server.stop()


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def collect(stream) -> bytes:
    return b"".join([c async for c in stream])


async def test_objects_stream_in_and_out_of_swift_with_metadata(swift, monkeypatch):
    monkeypatch.setenv("COFFER_OBJECT_STORE", "swift")
    monkeypatch.setenv("COFFER_SWIFT_URL", swift.url)
    monkeypatch.delenv("COFFER_SWIFT_TOKEN", raising=False)
    store = objectstore.from_environment()
    assert isinstance(store, SwiftStore)
    parts = [os.urandom(1024 * 1024) for _ in range(5)]
    info = await store.put("project-a", "b-1/full", chunks(*parts), {"sha256": "abc", "kind": "full"})
    assert (info.size, info.metadata) == (5 * 1024 * 1024, {"sha256": "abc", "kind": "full"})
    assert await collect(store.get("project-a", "b-1/full")) == b"".join(parts)
    await store.put("project-a", "b-2/full", chunks(b"x"))
    await store.put("project-b", "b-3/full", chunks(b"y"))
    assert [o.name for o in await store.list("project-a", "b-")] == ["b-1/full", "b-2/full"]
    await store.delete("project-a", "b-1/full")
    await store.delete("project-a", "b-1/full")  # again: no error
    with pytest.raises(ObjectNotFound):
        await store.head("project-a", "b-1/full")
    with pytest.raises(ObjectNotFound):
        await collect(store.get("project-a", "b-1/full"))
    assert await store.list("no-such-container") == []


async def test_a_failed_upload_leaves_no_object(swift):
    store = SwiftStore(connect(swift.url))

    async def broken():
        yield b"partial" * 1000
        raise OSError("the source went away")

    with pytest.raises(Exception):
        await store.put("project-a", "broken", broken())
    with pytest.raises(ObjectNotFound):
        await store.head("project-a", "broken")


async def test_a_sealed_backup_round_trips_through_swift_and_tampering_is_caught(swift):
    store, key = SwiftStore(connect(swift.url)), backupkeys.new_data_key()
    plain = [b"COPY t FROM stdin;\n" * 200_000, os.urandom(3 * 1024 * 1024)]
    sealing = Sealing(key)
    await store.put("project-a", "b-9/full", sealing.seal(chunks(*plain)))
    restored = await collect(unseal(store.get("project-a", "b-9/full"), key, sealing.sha256))
    assert hashlib.sha256(restored).hexdigest() == sealing.sha256 == hashlib.sha256(b"".join(plain)).hexdigest()
    sealed = bytearray(await collect(store.get("project-a", "b-9/full")))
    sealed[-20] ^= 0xFF
    await store.put("project-a", "b-9/full", chunks(bytes(sealed)))
    with pytest.raises(IntegrityError):
        await collect(unseal(store.get("project-a", "b-9/full"), key, sealing.sha256))


async def test_any_container_name_a_backup_strategy_takes_works_in_swift(swift):
    """The names the API lets a backup strategy or a backup choose (objectstore.CONTAINER_NAME)
    are names Swift takes; a WAL archive in such a container is listed and pruned by prefix."""
    store = SwiftStore(connect(swift.url))
    for container in ("team.backups_2026-q4", "x" * 255, "9"):
        assert objectstore.CONTAINER_NAME.match(container)
        for segment in ("000000010000000000000001", "000000010000000000000002"):
            await store.put(container, f"inst-1/wal/{segment}", chunks(b"wal"))
        assert [o.name for o in await store.list(container, "inst-1/wal/")] == [
            "inst-1/wal/000000010000000000000001", "inst-1/wal/000000010000000000000002"]
        await store.delete(container, "inst-1/wal/000000010000000000000001")
        assert [o.name for o in await store.list(container, "inst-1/wal/")] == ["inst-1/wal/000000010000000000000002"]
    for refused in ("a/b", "..", ".hidden", "", "x" * 256):
        assert not objectstore.CONTAINER_NAME.match(refused)
