"""A tool's standard output as a stream of chunks; its failure as an exception."""
from __future__ import annotations

import asyncio
import fcntl
from pathlib import Path
from typing import AsyncIterator

CHUNK_BYTES = 1024 * 1024


class ToolFailed(Exception):
    pass


async def output_of(argv: list[str], cwd: str = "/", env: dict | None = None) -> AsyncIterator[bytes]:
    """The bytes `argv` writes to stdout. Raises ToolFailed (with its stderr's tail)
    when it exits non-zero, so a consumer never takes a broken stream for a whole one;
    a consumer that stops early kills the tool."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                cwd=cwd, env=env, limit=CHUNK_BYTES)
    errors = asyncio.create_task(proc.stderr.read())
    finished = False
    try:
        # a pipe hands over 64 KiB at a time: gather whole chunks, so the per-chunk work
        # (a hop to a worker thread for hashing, compression, encryption) stays small
        buffer = bytearray()
        while piece := await proc.stdout.read(CHUNK_BYTES):
            buffer += piece
            if len(buffer) >= CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
        code = await proc.wait()
        finished = True
        if code != 0:
            tail = (await errors).decode(errors="replace").strip()[-800:]
            raise ToolFailed(f"{_tool(argv)} exited {code}: {tail}")
    finally:
        if not finished and proc.returncode is None:
            proc.kill()
            await proc.wait()
        errors.cancel()


def _tool(argv: list[str]) -> str:
    """The tool's name, past a setpriv prefix."""
    names = [a for a in argv if not a.startswith("-") and a != "setpriv"]
    return Path(names[0]).name if names else "tool"


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
            yield chunk
    finally:
        f.close()


PIPE_BYTES = 1024 * 1024


def _widen(stream: asyncio.StreamWriter) -> None:
    """A 1 MiB pipe instead of 64 KiB: a frame then crosses in a few writes, not one
    event-loop round per 64 KiB (worth a third of a restore's throughput)."""
    try:
        fcntl.fcntl(stream.transport.get_extra_info("pipe").fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (OSError, ValueError):  # past pipe-max-size unprivileged, or the tool is gone already
        pass


async def feed(argv: list[str], chunks: AsyncIterator[bytes], cwd: str = "/") -> None:
    """Pipe `chunks` into `argv`'s stdin; ToolFailed when it exits non-zero. An
    exception from `chunks` (a frame that fails authentication) kills the tool and
    propagates: whatever it wrote is void."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                cwd=cwd)
    _widen(proc.stdin)
    output = asyncio.create_task(proc.stdout.read())
    try:
        async for chunk in chunks:
            proc.stdin.write(chunk)
            await proc.stdin.drain()
        proc.stdin.close()
        code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        output.cancel()
        raise
    text = (await output).decode(errors="replace").strip()[-800:]
    if code != 0:
        raise ToolFailed(f"{_tool(argv)} exited {code}: {text}")


async def run_tool(argv: list[str]) -> None:
    await feed(argv, _nothing())


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield
