"""OpenStack Swift as the object store, through openstacksdk. Uploads stream with
chunked transfer encoding (never a whole object in memory); a failed upload leaves
no object, since Swift publishes an object only when its body completes.

openstacksdk is synchronous: each blocking call runs in a worker thread."""
from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import AsyncIterable, AsyncIterator
from urllib.parse import quote

from .objectstore import CHUNK_BYTES, READ_AHEAD_CHUNKS, ObjectInfo, ObjectNotFound, ObjectStore, _checked
from .threadstage import read_ahead

META = "x-object-meta-"


def _path(container: str, name: str | None = None) -> str:
    path = "/" + quote(_checked(container), safe="")
    return path if name is None else f"{path}/{quote(_checked(name))}"


def _modified(headers) -> datetime:
    value = headers.get("last-modified")
    return parsedate_to_datetime(value) if value else datetime.now(timezone.utc)


class SwiftStore(ObjectStore):
    def __init__(self, connection):
        """`connection`: an openstack.connection.Connection with an object-store endpoint."""
        self.swift = connection.object_store
        self._containers: set[str] = set()

    async def _ensure_container(self, container: str) -> None:
        if container not in self._containers:
            response = await asyncio.to_thread(self.swift.put, _path(container))
            response.raise_for_status()
            self._containers.add(container)

    async def put(self, container, name, chunks: AsyncIterable[bytes], metadata=None) -> ObjectInfo:
        await self._ensure_container(container)
        loop = asyncio.get_running_loop()
        source = chunks.__aiter__()

        def body():
            # requests pulls the body in its thread; each chunk comes from the event loop
            while True:
                try:
                    yield asyncio.run_coroutine_threadsafe(source.__anext__(), loop).result()
                except StopAsyncIteration:
                    return

        headers = {f"X-Object-Meta-{k}": v for k, v in (metadata or {}).items()}
        headers["Transfer-Encoding"] = "chunked"
        response = await asyncio.to_thread(self.swift.put, _path(container, name), data=body(), headers=headers)
        response.raise_for_status()
        return await self.head(container, name)

    async def get(self, container, name) -> AsyncIterator[bytes]:
        response = await asyncio.to_thread(self.swift.get, _path(container, name), stream=True,
                                           raise_exc=False)
        if response.status_code == 404:
            raise ObjectNotFound(f"{container}/{name}")
        response.raise_for_status()
        pieces = response.iter_content(CHUNK_BYTES)
        reading = read_ahead(functools.partial(next, pieces, b""), READ_AHEAD_CHUNKS, "swift-read")
        try:
            async for chunk in reading:
                yield chunk
        finally:
            await reading.aclose()  # its thread has ended: the response may be closed
            response.close()

    async def head(self, container, name) -> ObjectInfo:
        response = await asyncio.to_thread(self.swift.head, _path(container, name), raise_exc=False)
        if response.status_code == 404:
            raise ObjectNotFound(f"{container}/{name}")
        response.raise_for_status()
        h = response.headers
        metadata = {k[len(META):]: v for k, v in h.items() if k.lower().startswith(META)}
        return ObjectInfo(container, name, int(h.get("content-length", 0)), _modified(h),
                          {k.lower(): v for k, v in metadata.items()})

    async def list(self, container, prefix="") -> list[ObjectInfo]:
        response = await asyncio.to_thread(self.swift.get, _path(container), raise_exc=False,
                                           params={"format": "json", "prefix": prefix})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        listed = response.json() if response.status_code == 200 else []
        return [await self.head(container, o["name"]) for o in listed]

    async def delete(self, container, name) -> None:
        response = await asyncio.to_thread(self.swift.delete, _path(container, name), raise_exc=False)
        if response.status_code not in (404,):
            response.raise_for_status()


def connect(url: str, token: str | None = None):
    """A connection to the Swift at `url` (its storage URL, .../v1/AUTH_<account>),
    with a token, or with no auth for a Swift that has none."""
    import openstack  # heavy: only the services that use Swift pay for it
    if token:
        return openstack.connect(auth_type="admin_token", auth={"endpoint": url, "token": token},
                                 object_store_endpoint_override=url)
    return openstack.connect(auth_type="none", auth={"endpoint": url}, object_store_endpoint_override=url)
