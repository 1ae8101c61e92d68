"""Guest logs, the agent's side (Trove's guest_log): each datastore names its logs
(`LogDef`: a USER log the tenant switches on and off, or a SYS log that is always
on) and the file each is written to; this module shows them, switches USER logs
through the plugin, publishes a log's new content to the object store and discards
what was published.

Published objects follow Trove's layout, so clients that read Swift find them: in
container COFFER_GUEST_LOG_CONTAINER (Trove's `database_logs`), under the prefix
`<instance>/<datastore>-<log>/`, as parts `log-<UTC time>-<n>` of at most
COFFER_GUEST_LOG_CHUNK_BYTES each (whole lines, metadata `lines`), beside a
metafile `<instance>/<datastore>-<log>_metafile` (JSON: log_name, log_type,
log_file, log_size = bytes published, log_header_digest = md5 of the first line,
which tells a rotated file from a grown one). The object store is the source of
truth for what was published; the engine for whether a log is on."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

from plumbing.objectstore import ObjectNotFound, ObjectStore

USER, SYS = "USER", "SYS"
CONTAINER = os.environ.get("COFFER_GUEST_LOG_CONTAINER", "database_logs")
CHUNK_BYTES = int(os.environ.get("COFFER_GUEST_LOG_CHUNK_BYTES", str(1_000_000)))  # Trove's guest_log_limit
# a statement slower than this goes to the slow query log (Trove's guest_log_long_query_time)
LONG_QUERY_MS = int(os.environ.get("COFFER_GUEST_LOG_LONG_QUERY_MS", "1000"))
READ_BYTES = 64 * 1024


class UnknownLog(ValueError):
    pass


@dataclass(frozen=True)
class LogDef:
    name: str
    type: str   # USER or SYS
    file: Path


class GuestLogSource(ABC):
    """What a datastore plugin does for guest logs."""

    @abstractmethod
    def log_definitions(self) -> dict[str, LogDef]: ...

    @abstractmethod
    async def log_enabled(self, name: str) -> bool:
        """Whether the running engine writes the USER log `name` now."""

    @abstractmethod
    async def switch_log(self, name: str, on: bool) -> bool:
        """Switch the engine's setting for USER log `name`, kept across restarts;
        True when it takes effect only at the next restart."""

    async def refresh_log(self, name: str) -> None:
        """Bring the log's file up to date (for a log the engine keeps elsewhere)."""


@dataclass(frozen=True)
class Published:
    size: int = 0
    digest: str | None = None


def header_digest(path: Path) -> str | None:
    """md5 of the file's first line (Trove's rotation check), None without a file."""
    try:
        with open(path, "rb") as f:
            return hashlib.md5(f.readline()).hexdigest()
    except FileNotFoundError:
        return None


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def status(log: LogDef, enabled: bool, restart_required: bool, size: int, published: Published,
           digest: str | None) -> str:
    """Trove's LogStatus for a log as it stands."""
    if restart_required:
        return "Restart Required"
    if not enabled or not size:
        return ("Enabled" if enabled else "Disabled") if log.type == USER else "Unavailable"
    if published.size and (size < published.size or published.digest != digest):
        return "Rotated"
    if size > published.size:
        return "Partial" if published.size else "Ready"
    return "Published" if published.size else "Enabled"


def lines(chunk: bytes) -> int:
    return chunk.count(b"\n")


async def parts(path: Path, offset: int, limit: int) -> AsyncIterator[bytes]:
    """The file's whole lines from `offset`, grouped into parts of at most `limit`
    bytes (a longer line is a part of its own); a last line still being written
    waits for the next publish."""
    f = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(f.seek, offset)
        part, size, rest = [], 0, b""
        while block := await asyncio.to_thread(f.read, READ_BYTES):
            rest += block
            cut = rest.rfind(b"\n") + 1
            if not cut:
                continue
            for line in rest[:cut].split(b"\n")[:-1]:
                if part and size + len(line) + 1 > limit:
                    yield b"".join(part)
                    part, size = [], 0
                part.append(line + b"\n")
                size += len(line) + 1
            rest = rest[cut:]
        if part:
            yield b"".join(part)
    finally:
        f.close()


class GuestLogs:
    def __init__(self, source: GuestLogSource, store: ObjectStore, instance_id: str, datastore: str,
                 state_file: Path):
        self.source, self.store = source, store
        self.instance_id, self.datastore = instance_id, datastore
        self.state_file = state_file  # USER logs asked for that wait for a restart

    def _log(self, name: str) -> LogDef:
        try:
            return self.source.log_definitions()[name]
        except KeyError:
            raise UnknownLog(f"Log {name!r} not found for datastore {self.datastore}.") from None

    def prefix(self, log: LogDef) -> str:
        return f"{self.instance_id}/{self.datastore}-{log.name}/"

    def metafile(self, log: LogDef) -> str:
        return self.prefix(log).rstrip("/") + "_metafile"

    # -- state ---------------------------------------------------------------------
    def _awaiting_restart(self) -> dict[str, bool]:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}

    def _set_awaiting_restart(self, name: str, wanted: bool | None) -> None:
        state = self._awaiting_restart()
        if wanted is None:
            state.pop(name, None)
        else:
            state[name] = wanted
        scratch = self.state_file.with_name(f".{self.state_file.name}.tmp")
        scratch.write_text(json.dumps(state))
        os.replace(scratch, self.state_file)

    async def _published(self, log: LogDef) -> Published:
        try:
            chunks = [c async for c in self.store.get(CONTAINER, self.metafile(log))]
        except ObjectNotFound:
            return Published()
        meta = json.loads(b"".join(chunks))
        return Published(int(meta["log_size"]), meta.get("log_header_digest"))

    async def _enabled(self, log: LogDef) -> tuple[bool, bool]:
        """(enabled, restart required): a change asked for that the engine does not run yet."""
        if log.type == SYS:
            return True, False
        live = await self.source.log_enabled(log.name)
        wanted = self._awaiting_restart().get(log.name)
        if wanted is not None and wanted == live:
            self._set_awaiting_restart(log.name, None)  # the restart came
            wanted = None
        return (live if wanted is None else wanted), wanted is not None

    # -- what a tenant sees ------------------------------------------------------------
    async def show(self, name: str) -> dict:
        log = self._log(name)
        await self.source.refresh_log(name)
        enabled, restart_required = await self._enabled(log)
        published = await self._published(log)
        size, digest = file_size(log.file), header_digest(log.file)
        state = status(log, enabled, restart_required, size, published, digest)
        return {
            "name": log.name, "type": log.type, "status": state, "published": published.size,
            "pending": size if state == "Rotated" else max(0, size - published.size),
            "container": CONTAINER if published.size else "None",
            "prefix": self.prefix(log) if published.size else "None", "metafile": self.metafile(log)}

    async def list(self) -> list[dict]:
        return [await self.show(name) for name in sorted(self.source.log_definitions())]

    async def enable(self, name: str, on: bool) -> dict:
        log = self._log(name)
        if log.type == SYS:
            raise ValueError(f"Log {name!r} is a SYS log: it is always on and cannot be "
                             f"{'enabled' if on else 'disabled'}.")
        if await self.source.switch_log(name, on):
            self._set_awaiting_restart(name, on)
        else:
            self._set_awaiting_restart(name, None)
        return await self.show(name)

    async def publish(self, name: str) -> dict:
        """Copy what the log gained since the last publish (all of it after a rotation)."""
        log = self._log(name)
        await self.source.refresh_log(name)
        if not log.file.exists():
            raise ValueError(f"Log {name!r} has no file to publish yet; enable it first.")
        published, digest = await self._published(log), header_digest(log.file)
        if published.size and (file_size(log.file) < published.size or published.digest != digest):
            await self._delete_objects(log)
            published = Published()
        size, stamp = published.size, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
        async for number, part in aenumerate(parts(log.file, size, CHUNK_BYTES)):
            # Trove's log-<UTC time>, numbered so the parts of one publish sort in order
            await self.store.put(CONTAINER, f"{self.prefix(log)}log-{stamp}-{number:06d}", one(part),
                                 {"lines": str(lines(part))})
            size += len(part)
        await self._put_metafile(log, size, digest)
        return await self.show(name)

    async def discard(self, name: str) -> dict:
        log = self._log(name)
        await self._delete_objects(log)
        return await self.show(name)

    async def _put_metafile(self, log: LogDef, size: int, digest: str | None) -> None:
        meta = {"log_name": log.name, "log_type": log.type, "log_file": str(log.file), "log_size": size,
                "log_header_digest": digest}
        await self.store.put(CONTAINER, self.metafile(log), one(json.dumps(meta).encode()))

    async def _delete_objects(self, log: LogDef) -> None:
        for info in await self.store.list(CONTAINER, self.prefix(log)):
            await self.store.delete(CONTAINER, info.name)
        await self.store.delete(CONTAINER, self.metafile(log))


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def aenumerate(items: AsyncIterator) -> AsyncIterator[tuple[int, object]]:
    number = 0
    async for item in items:
        yield number, item
        number += 1
