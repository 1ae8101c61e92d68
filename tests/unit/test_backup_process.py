"""agent/backups/process.py: a tool's output as chunks and chunks into a tool, with its failures."""
from __future__ import annotations

import asyncio
import hashlib
import sys

import pytest

from agent.backups.process import CHUNK_BYTES, ToolFailed, feed, output_of

# 10 MiB of distinct lines on stdout, in writes of odd sizes
WRITER = ("import sys\n"
          "data = b''.join(b'%08d\\n' % i for i in range(10 * 1024 * 1024 // 9 + 1))[:10 * 1024 * 1024]\n"
          "for start in range(0, len(data), 70001): sys.stdout.buffer.write(data[start:start + 70001])\n")


async def test_a_tools_output_arrives_whole_in_chunks():
    chunks = [chunk async for chunk in output_of([sys.executable, "-c", WRITER])]
    expected = b"".join(b"%08d\n" % i for i in range(10 * 1024 * 1024 // 9 + 1))[:10 * 1024 * 1024]
    assert b"".join(chunks) == expected
    assert all(len(chunk) == CHUNK_BYTES for chunk in chunks[:-1]) and 0 < len(chunks[-1]) <= CHUNK_BYTES


async def test_a_tool_that_fails_raises_with_its_stderr():
    with pytest.raises(ToolFailed, match=r"sh exited 3: .*disk on fire"):
        async for _chunk in output_of(["sh", "-c", "echo partial; echo disk on fire >&2; exit 3"]):
            pass


async def test_a_consumer_that_stops_early_stops_the_tool():
    stream = output_of(["yes"])
    assert (await anext(stream)).startswith(b"y\ny\n")
    await asyncio.wait_for(stream.aclose(), 10)  # `yes` never ends by itself


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_chunks_reach_the_tool_whole(tmp_path):
    parts = [bytes(range(256)) * 40_000, b"", b"tail" * 3]
    await feed(["sh", "-c", f"cat > {tmp_path}/out"], chunks(*parts))
    assert hashlib.sha256((tmp_path / "out").read_bytes()).digest() == hashlib.sha256(b"".join(parts)).digest()


async def test_a_tool_that_fails_or_stops_reading_raises_with_its_output():
    with pytest.raises(ToolFailed, match=r"sh exited 2: .*bad archive"):
        await feed(["sh", "-c", "echo bad archive; exit 2"], chunks(b"x" * 5 * CHUNK_BYTES))
    with pytest.raises(ToolFailed, match="head exited before reading its whole input"):
        await feed(["head", "-c", "10"], chunks(b"x" * 5 * CHUNK_BYTES))


async def test_an_error_of_the_chunks_stops_the_tool_and_propagates(tmp_path):
    async def failing():
        yield b"x" * CHUNK_BYTES
        raise ValueError("frame 1 fails authentication")

    with pytest.raises(ValueError, match="frame 1"):
        # the tool would wait for the end of its input forever
        await asyncio.wait_for(feed(["sh", "-c", f"cat > {tmp_path}/out; touch {tmp_path}/finished"], failing()), 10)
    assert not (tmp_path / "finished").exists()
