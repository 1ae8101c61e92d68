"""plumbing/threadstage.py: work in threads of their own, in order, errors in their place."""
from __future__ import annotations

import asyncio
import threading

import pytest

from plumbing.threadstage import Stage, mapped, read_ahead


async def numbers(n: int, fail_at: int | None = None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"source broke at {i}")
        yield i
        await asyncio.sleep(0)


async def test_mapped_keeps_the_order_and_works_off_the_event_loop():
    loop_thread = threading.get_ident()
    seen = []

    def square(i: int) -> int:
        seen.append(threading.get_ident())
        return i * i

    assert [x async for x in mapped(numbers(50), square, 3, "test")] == [i * i for i in range(50)]
    assert loop_thread not in seen and len(set(seen)) == 1


async def test_an_error_of_the_source_or_of_the_work_comes_after_the_items_before_it():
    got = []
    with pytest.raises(ValueError, match="source broke at 7"):
        async for x in mapped(numbers(20, fail_at=7), lambda i: i, 2, "test"):
            got.append(x)
    assert got == list(range(7))

    def fragile(i: int) -> int:
        if i == 4:
            raise KeyError("work broke")
        return i

    got = []
    with pytest.raises(KeyError):
        async for x in mapped(numbers(20), fragile, 2, "test"):
            got.append(x)
    assert got == [0, 1, 2, 3]


async def test_a_consumer_that_stops_early_stops_the_thread():
    stream = mapped(numbers(1000), lambda i: i, 2, "test-early")
    async for x in stream:
        if x == 3:
            break
    await stream.aclose()
    assert not [t for t in threading.enumerate() if t.name == "test-early"]


async def test_a_stage_does_every_item_before_close_and_then_reports_its_failure():
    total = []
    stage = Stage(total.append, 2, "test-sink")
    for i in range(100):
        await stage.put(i)
    await stage.close()
    assert total == list(range(100))

    def refuse(i: int) -> None:
        raise BrokenPipeError("reader gone")

    stage = Stage(refuse, 2, "test-sink")
    with pytest.raises(BrokenPipeError):
        for i in range(100):  # a put after the failure raises it; close() does too
            await stage.put(i)
        await stage.close()


async def test_read_ahead_reads_until_the_end_and_raises_a_reads_error_in_its_place():
    pieces = iter([b"a", b"b", b"c"])
    assert [c async for c in read_ahead(lambda: next(pieces, b""), 2, "test-read")] == [b"a", b"b", b"c"]

    def broken():
        yield b"a"
        raise OSError("disk gone")

    source = broken()
    got = []
    with pytest.raises(OSError, match="disk gone"):
        async for chunk in read_ahead(lambda: next(source, b""), 2, "test-read"):
            got.append(chunk)
    assert got == [b"a"]
