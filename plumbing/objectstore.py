"""Object storage for backups, published guest logs and WAL/binlog archives: one
interface, with a local directory as the embedded default. Objects are written and
read as streams of chunks, never held whole in memory.

Names are paths inside a container ("<instance>/logs/general/000001.log"); metadata
is a small dict of strings kept with the object (lower-case keys: Swift folds case)."""
from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterable, AsyncIterator

from .config import coffer_home
from .threadstage import read_ahead

CHUNK_BYTES = 1024 * 1024
READ_AHEAD_CHUNKS = 4  # read in a thread of its own while the reader works on the chunks before


class ObjectNotFound(Exception):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    container: str
    name: str
    size: int
    modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(ABC):
    @abstractmethod
    async def put(self, container: str, name: str, chunks: AsyncIterable[bytes],
                  metadata: dict[str, str] | None = None) -> ObjectInfo:
        """Write the object from `chunks`; it appears whole or not at all."""

    @abstractmethod
    def get(self, container: str, name: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; ObjectNotFound when there is none."""

    @abstractmethod
    async def head(self, container: str, name: str) -> ObjectInfo:
        """The object's size and metadata; ObjectNotFound when there is none."""

    @abstractmethod
    async def list(self, container: str, prefix: str = "") -> list[ObjectInfo]:
        """The objects whose names start with `prefix`, by name."""

    @abstractmethod
    async def delete(self, container: str, name: str) -> None:
        """Delete the object; deleting a missing one is no error."""


def _checked(part: str) -> str:
    if not part or part.startswith("/") or any(p in ("", ".", "..") for p in part.split("/")):
        raise ValueError(f"bad object path {part!r}")
    return part


class LocalDirectoryStore(ObjectStore):
    """<root>/<container>/<name>, each object's metadata beside it in
    <root>/<container>/.meta/<name>.json. Writes go to a scratch file renamed into
    place, so a reader never sees half an object."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, container: str, name: str) -> Path:
        return self.root / _checked(container) / _checked(name)

    def _meta(self, container: str, name: str) -> Path:
        return self.root / _checked(container) / ".meta" / f"{_checked(name)}.json"

    async def put(self, container, name, chunks, metadata=None) -> ObjectInfo:
        path, meta = self._path(container, name), self._meta(container, name)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        size = 0
        f = await asyncio.to_thread(open, scratch, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(f.write, chunk)
                size += len(chunk)
            await asyncio.to_thread(f.flush)
            await asyncio.to_thread(os.fsync, f.fileno())
        except BaseException:
            f.close()
            scratch.unlink(missing_ok=True)
            raise
        f.close()

        def publish() -> None:
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta_scratch = meta.with_name(f".{meta.name}.{uuid.uuid4().hex}")
            meta_scratch.write_text(json.dumps(metadata or {}))
            meta_scratch.replace(meta)
            scratch.replace(path)
        await asyncio.to_thread(publish)
        return await self.head(container, name)

    async def get(self, container, name) -> AsyncIterator[bytes]:
        path = self._path(container, name)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"{container}/{name}") from None
        reading = read_ahead(functools.partial(f.read, CHUNK_BYTES), READ_AHEAD_CHUNKS, "objectstore-read")
        try:
            async for chunk in reading:
                yield chunk
        finally:
            await reading.aclose()  # its thread has ended: the file may be closed
            f.close()

    async def head(self, container, name) -> ObjectInfo:
        path, meta = self._path(container, name), self._meta(container, name)

        def read() -> ObjectInfo:
            try:
                stat = path.stat()
            except FileNotFoundError:
                raise ObjectNotFound(f"{container}/{name}") from None
            try:
                metadata = json.loads(meta.read_text())
            except FileNotFoundError:
                metadata = {}
            return ObjectInfo(container, name, stat.st_size,
                              datetime.fromtimestamp(stat.st_mtime, timezone.utc), metadata)
        return await asyncio.to_thread(read)

    async def list(self, container, prefix="") -> list[ObjectInfo]:
        base = self.root / _checked(container)

        def names() -> list[str]:
            if not base.is_dir():
                return []
            found = []
            for root, dirs, files in os.walk(base):
                dirs[:] = [d for d in dirs if d != ".meta"]
                for file in files:
                    if not file.startswith("."):
                        found.append(str(Path(root, file).relative_to(base)))
            return sorted(n for n in found if n.startswith(prefix))
        return [await self.head(container, n) for n in await asyncio.to_thread(names)]

    async def delete(self, container, name) -> None:
        def remove() -> None:
            self._path(container, name).unlink(missing_ok=True)
            self._meta(container, name).unlink(missing_ok=True)
        await asyncio.to_thread(remove)

    async def delete_container(self, container: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / _checked(container), True)


# a container name every store takes: Swift's (no "/", at most 256 bytes) and a directory's
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def kind() -> str:
    """Which store this deployment uses (COFFER_OBJECT_STORE): `local` or `swift`."""
    return os.environ.get("COFFER_OBJECT_STORE", "local")


def from_environment() -> ObjectStore:
    """The store this deployment uses: COFFER_OBJECT_STORE, `local` (the default:
    COFFER_OBJECT_STORE_DIR, else <COFFER_HOME>/objects) or `swift` (COFFER_SWIFT_URL,
    the storage URL, and COFFER_SWIFT_TOKEN unless that Swift has no auth)."""
    chosen = kind()
    if chosen == "local":
        return LocalDirectoryStore(Path(os.environ.get("COFFER_OBJECT_STORE_DIR", coffer_home() / "objects")))
    if chosen == "swift":
        from .swiftstore import SwiftStore, connect
        return SwiftStore(connect(os.environ["COFFER_SWIFT_URL"], os.environ.get("COFFER_SWIFT_TOKEN")))
    raise ValueError(f"unknown object store {chosen!r} (COFFER_OBJECT_STORE)")
