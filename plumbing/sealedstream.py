"""Backup objects as streams: plain chunks -> zstd -> AES-256-GCM frames, and back.

Layout: MAGIC, then frames `<u32 length><u8 last><ciphertext+tag>`. Frame n is
encrypted under the backup's data key with nonce = n (96 bits, big-endian) and the
associated data `n || last`, so a frame that is altered, moved, dropped or a stream
cut short fails authentication. The SHA-256 of the plain stream is computed on the
way in and checked on the way out.

Hashing, and compression with encryption (or authentication with decompression),
run in threads of their own (hashlib, zstd and OpenSSL release the GIL): on two
cores they overlap, and the event loop keeps serving while a backup streams."""
from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass, field
from typing import AsyncIterable, AsyncIterator

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .threadstage import Stage, mapped

MAGIC = b"COFFERB1"
FRAME_HEADER = struct.Struct(">IB")
# A frame holds what about this much plain input compressed to, so that opening one
# never yields more than this (highly compressible data would otherwise explode).
FRAME_PLAIN_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 64 * 1024 * 1024
STAGE_DEPTH = 4  # chunks (1 MiB) or frames (4 MiB plain) queued for each stage
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

        # two threads of their own, each with its queue: the hash of the plain stream
        # (the costliest step after compression) runs beside compression and
        # encryption, and both beside the reading of the source
        hashing = Stage(self._hash.update, STAGE_DEPTH, "seal-sha256")
        try:
            yield MAGIC
            async for sealed_frames in mapped(self._hashed(_bounded(plain), hashing), absorb, STAGE_DEPTH,
                                              "seal-zstd-aes"):
                for sealed in sealed_frames:
                    yield sealed
            yield await asyncio.to_thread(finish)
            await hashing.close()
        finally:
            await hashing.abandon()
        self.sha256 = self._hash.hexdigest()

    async def _hashed(self, plain: AsyncIterable[bytes], hashing: Stage) -> AsyncIterator[bytes]:
        async for chunk in plain:
            self.plain_bytes += len(chunk)
            await hashing.put(chunk)
            yield chunk


async def _bounded(plain: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Chunks of at most FRAME_PLAIN_BYTES, so no frame holds much more."""
    async for chunk in plain:
        for start in range(0, len(chunk), FRAME_PLAIN_BYTES):
            yield chunk[start:start + FRAME_PLAIN_BYTES]


async def _frames(sealed: AsyncIterable[bytes]) -> AsyncIterator[tuple[bool, bytes | memoryview]]:
    """(last, ciphertext) for each frame, whatever the chunking of the object. A frame
    that lies inside one chunk is a view of it (the chunks are immutable bytes): only
    one that spans chunks is put together, once (copying every chunk into a buffer and
    each frame out of it cost the event loop two copies of the object)."""
    carry = bytearray()  # the magic, or a frame, begun in the chunks before
    seen_magic = False
    async for chunk in sealed:
        data = memoryview(chunk)
        while data and (carry or not seen_magic):
            taken = _wanted(carry, seen_magic) - len(carry)
            carry += data[:taken]
            data = data[taken:]
            if len(carry) < _wanted(carry, seen_magic):
                continue  # the rest of the magic, of a header, or of its frame is still to come
            if not seen_magic:
                if carry != MAGIC:
                    raise IntegrityError("not a Coffer backup object (bad header)")
                seen_magic = True
            else:
                yield bool(carry[FRAME_HEADER.size - 1]), memoryview(carry)[FRAME_HEADER.size:]
            carry = bytearray()
        while len(data) >= FRAME_HEADER.size:
            length, last = _header(data)
            if len(data) < FRAME_HEADER.size + length:
                break
            yield bool(last), data[FRAME_HEADER.size:FRAME_HEADER.size + length]
            data = data[FRAME_HEADER.size + length:]
        carry += data
    if carry or not seen_magic:
        raise IntegrityError("the object ends inside a frame: it is truncated")


def _wanted(carry: bytearray, seen_magic: bool) -> int:
    """How long `carry` must grow: to the magic, a frame's header, or its whole frame."""
    if not seen_magic:
        return len(MAGIC)
    if len(carry) < FRAME_HEADER.size:
        return FRAME_HEADER.size
    return FRAME_HEADER.size + _header(carry)[0]


def _header(data) -> tuple[int, int]:
    length, last = FRAME_HEADER.unpack_from(data)
    if length > MAX_FRAME_BYTES or last not in (0, 1):
        raise IntegrityError("a frame header is corrupt")
    return length, last


def unseal(sealed: AsyncIterable[bytes], data_key: bytes, sha256: str | None) -> AsyncIterator[bytes]:
    """The plain stream back. Raises IntegrityError when a frame fails authentication,
    the stream is cut short, or (at the end) the plain stream's SHA-256 differs from
    `sha256`: a consumer must treat what it got as void until the iterator ends.
    Frames are opened ahead while the consumer works on the last one."""
    return _unseal(sealed, data_key, sha256)


async def _unseal(sealed: AsyncIterable[bytes], data_key: bytes, sha256: str | None) -> AsyncIterator[bytes]:
    aead = AESGCM(data_key)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    digest = hashlib.sha256()

    def open_frame(numbered: tuple[int, bool, bytes | memoryview]) -> bytes:
        index, last, ciphertext = numbered
        try:
            payload = aead.decrypt(_nonce(index), ciphertext, _aad(index, last))
        except InvalidTag:
            raise IntegrityError(f"frame {index} fails authentication: the object was altered "
                                 "or is not encrypted with this backup's key") from None
        return decompressor.decompress(payload)

    # frames are read, opened (authenticated, decompressed) and hashed in threads of
    # their own, each beside the others and beside the consumer's use of the plain bytes
    hashing = Stage(digest.update, STAGE_DEPTH, "unseal-sha256")
    try:
        async for plain in mapped(_numbered(_frames(sealed)), open_frame, STAGE_DEPTH, "unseal-aes-zstd"):
            await hashing.put(plain)
            if plain:
                yield plain
        await hashing.close()
    finally:
        await hashing.abandon()
    if sha256 is not None and digest.hexdigest() != sha256:
        raise IntegrityError("the restored stream's SHA-256 does not match the backup's checksum")


async def _numbered(frames: AsyncIterable[tuple[bool, bytes | memoryview]]
                   ) -> AsyncIterator[tuple[int, bool, bytes | memoryview]]:
    """(index, last, ciphertext) of each frame, up to the last one, which must come."""
    index = 0
    ended = False
    async for last, ciphertext in frames:
        if ended:
            raise IntegrityError("data follows the last frame")
        yield index, last, ciphertext
        index += 1
        ended = last
    if not ended:
        raise IntegrityError("the object has no last frame: it is truncated")
