"""plumbing/objectstore.py: the local-directory store, on a real file system."""
from __future__ import annotations

import os

import pytest

from plumbing import objectstore
from plumbing.objectstore import LocalDirectoryStore, ObjectNotFound


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def read(store, container, name) -> bytes:
    return b"".join([c async for c in store.get(container, name)])


async def test_put_get_head_list_delete(tmp_path):
    store = LocalDirectoryStore(tmp_path)
    info = await store.put("logs", "i-1/general/1.log", chunks(b"hello ", b"world"), {"lines": "1"})
    assert (info.size, info.metadata) == (11, {"lines": "1"})
    assert await read(store, "logs", "i-1/general/1.log") == b"hello world"
    await store.put("logs", "i-1/error/1.log", chunks(b"x"))
    await store.put("logs", "i-2/error/1.log", chunks(b"y"))
    assert [o.name for o in await store.list("logs", "i-1/")] == ["i-1/error/1.log", "i-1/general/1.log"]
    await store.delete("logs", "i-1/general/1.log")
    await store.delete("logs", "i-1/general/1.log")  # again: no error
    with pytest.raises(ObjectNotFound):
        await store.head("logs", "i-1/general/1.log")
    with pytest.raises(ObjectNotFound):
        await read(store, "logs", "i-1/general/1.log")
    assert await store.list("nothing-here") == []


async def test_a_failed_write_leaves_nothing(tmp_path):
    store = LocalDirectoryStore(tmp_path)

    async def broken():
        yield b"partial"
        raise OSError("the source went away")

    with pytest.raises(OSError):
        await store.put("b", "x", broken())
    assert await store.list("b") == []
    assert [f for _r, _d, files in os.walk(tmp_path) for f in files] == []


async def test_paths_cannot_leave_the_store(tmp_path):
    store = LocalDirectoryStore(tmp_path / "root")
    for bad in ("../escape", "/etc/passwd", "a//b", "a/./b"):
        with pytest.raises(ValueError):
            await store.put("c", bad, chunks(b"no"))
    with pytest.raises(ValueError):
        await store.put("..", "x", chunks(b"no"))


def test_the_default_store_is_a_directory_under_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("COFFER_HOME", str(tmp_path))
    monkeypatch.delenv("COFFER_OBJECT_STORE", raising=False)
    monkeypatch.delenv("COFFER_OBJECT_STORE_DIR", raising=False)
    store = objectstore.from_environment()
    assert isinstance(store, LocalDirectoryStore) and store.root == tmp_path / "objects"
    monkeypatch.setenv("COFFER_OBJECT_STORE", "tape")
    with pytest.raises(ValueError):
        objectstore.from_environment()
