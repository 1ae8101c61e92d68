"""Backup objects as streams: plain chunks -> zstd -> AES-256-GCM frames, and back.

Layout: MAGIC, then frames `<u32 length><u8 last><ciphertext+tag>`. Frame n is
encrypted under the backup's data key with nonce = n (96 bits, big-endian) and the
associated data `n || last`, so a frame that is altered, moved, dropped or a stream
cut short fails authentication. The SHA-256 of the plain stream is computed on the
way in and checked on the way out.

Compression and encryption run in a worker thread (zstd and OpenSSL release the GIL):
the event loop keeps serving while a backup streams."""
from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass, field
from typing import AsyncIterable, AsyncIterator

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"COFFERB1"
FRAME_HEADER = struct.Struct(">IB")
# A frame holds what about this much plain input compressed to, so that opening one
# never yields more than this (highly compressible data would otherwise explode).
FRAME_PLAIN_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 64 * 1024 * 1024
PREFETCH_CHUNKS = 8  # read ahead while a chunk is being compressed or opened in the worker thread
ZSTD_LEVEL = 1  # level 1 keeps pace with the engines' own tools on 2 cores (engines.md)


class IntegrityError(Exception):
    """The object is not what was written: an authentication tag or the checksum does not match."""


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


@dataclass
class Sealing:
    """Seals a plain stream; after the stream ends, `sha256` and `plain_bytes` describe it."""
    data_key: bytes
    level: int = ZSTD_LEVEL
    sha256: str = ""
    plain_bytes: int = 0
    _hash: "hashlib._Hash" = field(default_factory=hashlib.sha256)

    async def seal(self, plain: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        aead = AESGCM(self.data_key)
        compressor = zstandard.ZstdCompressor(level=self.level).compressobj()
        pending = bytearray()
        index = 0

        def frame(payload: bytes, last: bool) -> bytes:
            nonlocal index
            sealed = aead.encrypt(_nonce(index), payload, _aad(index, last))
            index += 1
            return FRAME_HEADER.pack(len(sealed), last) + sealed

        plain_in_frame = 0

        def absorb(chunk: bytes) -> list[bytes]:
            nonlocal plain_in_frame
            pending.extend(compressor.compress(chunk))
            plain_in_frame += len(chunk)
            if plain_in_frame < FRAME_PLAIN_BYTES:
                return []
            pending.extend(compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
            plain_in_frame = 0
            sealed = frame(bytes(pending), False)
            pending.clear()
            return [sealed]

        def finish() -> bytes:
            pending.extend(compressor.flush())
            return frame(bytes(pending), True)

        yield MAGIC
        async for chunk in prefetch(_bounded(plain)):
            self.plain_bytes += len(chunk)
            # hashing (the costliest part) runs beside compression and encryption: two cores
            _, sealed_frames = await asyncio.gather(asyncio.to_thread(self._hash.update, chunk),
                                                    asyncio.to_thread(absorb, chunk))
            for sealed in sealed_frames:
                yield sealed
        yield await asyncio.to_thread(finish)
        self.sha256 = self._hash.hexdigest()


async def _bounded(plain: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Chunks of at most FRAME_PLAIN_BYTES, so no frame holds much more."""
    async for chunk in plain:
        for start in range(0, len(chunk), FRAME_PLAIN_BYTES):
            yield chunk[start:start + FRAME_PLAIN_BYTES]


async def prefetch(source: AsyncIterable, depth: int = PREFETCH_CHUNKS) -> AsyncIterator:
    """`source`'s items, read up to `depth` ahead by a task of their own: reading the
    next chunk overlaps with the work on this one. An error of the source is raised
    in its place; a consumer that stops early stops the reader."""
    queue: asyncio.Queue = asyncio.Queue(depth)
    done = object()

    async def read() -> None:
        try:
            async for item in source:
                await queue.put((item, None))
            await queue.put((done, None))
        except Exception as exc:  # handed to the consumer
            await queue.put((done, exc))

    reader = asyncio.create_task(read())
    try:
        while True:
            item, error = await queue.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _frames(sealed: AsyncIterable[bytes]) -> AsyncIterator[tuple[bool, bytes]]:
    """(last, ciphertext) for each frame, whatever the chunking of the object."""
    buffer = bytearray()
    seen_magic = False
    async for chunk in sealed:
        buffer.extend(chunk)
        if not seen_magic:
            if len(buffer) < len(MAGIC):
                continue
            if bytes(buffer[:len(MAGIC)]) != MAGIC:
                raise IntegrityError("not a Coffer backup object (bad header)")
            del buffer[:len(MAGIC)]
            seen_magic = True
        while len(buffer) >= FRAME_HEADER.size:
            length, last = FRAME_HEADER.unpack_from(buffer)
            if length > MAX_FRAME_BYTES or last not in (0, 1):
                raise IntegrityError("a frame header is corrupt")
            if len(buffer) < FRAME_HEADER.size + length:
                break
            yield bool(last), bytes(buffer[FRAME_HEADER.size:FRAME_HEADER.size + length])
            del buffer[:FRAME_HEADER.size + length]
    if buffer or not seen_magic:
        raise IntegrityError("the object ends inside a frame: it is truncated")


def unseal(sealed: AsyncIterable[bytes], data_key: bytes, sha256: str | None) -> AsyncIterator[bytes]:
    """The plain stream back. Raises IntegrityError when a frame fails authentication,
    the stream is cut short, or (at the end) the plain stream's SHA-256 differs from
    `sha256`: a consumer must treat what it got as void until the iterator ends.
    Frames are opened ahead while the consumer works on the last one."""
    return prefetch(_unseal(sealed, data_key, sha256), 2)


async def _unseal(sealed: AsyncIterable[bytes], data_key: bytes, sha256: str | None) -> AsyncIterator[bytes]:
    aead = AESGCM(data_key)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    digest = hashlib.sha256()
    index = 0
    ended = False

    def open_frame(ciphertext: bytes, last: bool) -> bytes:
        try:
            payload = aead.decrypt(_nonce(index), ciphertext, _aad(index, last))
        except InvalidTag:
            raise IntegrityError(f"frame {index} fails authentication: the object was altered "
                                 "or is not encrypted with this backup's key") from None
        return decompressor.decompress(payload)

    hashing: asyncio.Future | None = None  # the previous frame's, beside this one's opening
    async for last, ciphertext in prefetch(_frames(sealed)):
        if ended:
            raise IntegrityError("data follows the last frame")
        plain = await asyncio.to_thread(open_frame, ciphertext, last)
        index += 1
        ended = last
        if hashing is not None:
            await hashing
        hashing = asyncio.ensure_future(asyncio.to_thread(digest.update, plain))
        if plain:
            yield plain
    if hashing is not None:
        await hashing
    if not ended:
        raise IntegrityError("the object has no last frame: it is truncated")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise IntegrityError("the restored stream's SHA-256 does not match the backup's checksum")
