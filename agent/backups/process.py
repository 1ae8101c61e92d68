"""A tool's standard output as a stream of chunks; its failure as an exception.

The bytes cross 1 MiB pipes by blocking reads and writes in threads of their own
(which release the GIL), a few chunks ahead of their use, a whole chunk per hop:
through asyncio's pipe transports every 64-256 KiB cost an event-loop round and a copy
(reading a 253 MB stream took 0.13 CPU seconds that way, 0.06 this way)."""
from __future__ import annotations

import asyncio
import fcntl
import functools
import os
from pathlib import Path
from typing import AsyncIterator

from plumbing.threadstage import Stage, read_ahead

CHUNK_BYTES = 1024 * 1024  # hashing and compressing 4 MiB chunks cost 5% more CPU (they leave the L2 cache)
PIPE_BYTES = 1024 * 1024  # pipe-max-size for an unprivileged process
WRITE_DEPTH = 4  # chunks queued for a tool's stdin
READ_AHEAD_CHUNKS = 4  # chunks read from a tool's stdout ahead of their use


class ToolFailed(Exception):
    pass


def _pipe() -> tuple[int, int]:
    """(read end, write end) of a pipe widened to PIPE_BYTES where the system allows."""
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:  # past pipe-max-size unprivileged: the pipe stays 64 KiB, slower but whole
        pass
    return read_end, write_end


async def output_of(argv: list[str], cwd: str = "/", env: dict | None = None) -> AsyncIterator[bytes]:
    """The bytes `argv` writes to stdout, in chunks of CHUNK_BYTES (the last one
    shorter). Raises ToolFailed (with its stderr's tail) when it exits non-zero, so a
    consumer never takes a broken stream for a whole one; a consumer that stops early
    kills the tool."""
    read_end, write_end = _pipe()
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
                                                    stderr=asyncio.subprocess.PIPE, cwd=cwd, env=env)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    # a buffered reader's read(n) reads on until it has n bytes or the tool closed its stdout
    source = open(read_end, "rb", buffering=PIPE_BYTES)
    errors = asyncio.create_task(proc.stderr.read())
    finished = False
    reading = read_ahead(functools.partial(source.read, CHUNK_BYTES), READ_AHEAD_CHUNKS, "read-" + _tool(argv))
    try:
        async for chunk in reading:
            yield chunk
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
        await reading.aclose()  # its thread ends: a read still running returns at the killed tool's end
        source.close()


def _tool(argv: list[str]) -> str:
    """The tool's name, past a setpriv prefix."""
    names = [a for a in argv if not a.startswith("-") and a != "setpriv"]
    return Path(names[0]).name if names else "tool"


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    reading = read_ahead(functools.partial(f.read, CHUNK_BYTES), READ_AHEAD_CHUNKS, "read-file")
    try:
        async for chunk in reading:
            yield chunk
    finally:
        await reading.aclose()  # its thread has ended: the file may be closed
        f.close()


def _write_all(fd: int, data: bytes) -> None:
    with memoryview(data) as view:
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])


async def feed(argv: list[str], chunks: AsyncIterator[bytes], cwd: str = "/") -> None:
    """Pipe `chunks` into `argv`'s stdin; ToolFailed when it exits non-zero, or stops
    reading before the end. An exception from `chunks` (a frame that fails
    authentication) kills the tool and propagates: whatever it wrote is void."""
    read_end, write_end = _pipe()
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=read_end, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, cwd=cwd)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    output = asyncio.create_task(proc.stdout.read())
    # the writes run in a thread of their own, a few chunks queued, beside whatever
    # produces the chunks; the pipe is closed only once that thread has ended (closed
    # earlier, a write could land in a reused fd)
    writing = Stage(functools.partial(_write_all, write_end), WRITE_DEPTH, "feed-" + _tool(argv))
    stopped_reading = False
    try:
        try:
            async for chunk in chunks:
                await writing.put(chunk)
            await writing.close()
        except BrokenPipeError:  # the tool exited: its exit code and output say why
            stopped_reading = True
        except BaseException:
            if proc.returncode is None:
                proc.kill()  # a write blocked on the full pipe returns: the reader is gone
            raise
        finally:
            await writing.abandon()
            os.close(write_end)
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
    if stopped_reading:
        raise ToolFailed(f"{_tool(argv)} exited before reading its whole input: {text}")


async def run_tool(argv: list[str]) -> None:
    await feed(argv, _nothing())


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield
