"""A stage of a byte pipeline in a thread of its own, fed through a bounded queue.

hashlib, zstandard, cryptography and os.write release the GIL on large buffers, so
stages in threads of their own run on separate cores. Each stage works through its
queue without waiting on the event loop: the loop only hands items over, and
`depth` items in flight let a stage that was descheduled for a moment catch up
(awaiting each step in turn, as asyncio.to_thread does, made every step wait for the
loop and for the step before it)."""
from __future__ import annotations

import asyncio
import queue
import threading
from typing import AsyncIterable, AsyncIterator, Callable

_END = object()  # ends a stage's thread
_DONE = object()  # ends a mapped() source


class _Failure:
    """An exception travelling through a stage's queue in its place in the stream."""

    def __init__(self, error: BaseException):
        self.error = error


class Stage:
    """Calls `work` on each item put, in order, in a thread of its own. At most `depth`
    items are waiting or being worked on (with `results`, also those not yet taken).
    After `work` raised, the following items are dropped and put() and close() raise
    that error."""

    def __init__(self, work: Callable, depth: int, name: str, results: bool = False):
        self._loop = asyncio.get_running_loop()
        self._work, self._results = work, results
        self._room = asyncio.Semaphore(depth)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._ended = self._loop.create_future()
        self._error: BaseException | None = None
        self._abandoned = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _tell_loop(self, callback, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody waits for this stage any more
            pass

    def _run(self) -> None:
        try:
            while (item := self._inbox.get()) is not _END:
                value = None
                if self._error is None and not self._abandoned:
                    try:
                        if isinstance(item, _Failure):
                            raise item.error
                        value = self._work(item)
                    except BaseException as exc:  # handed to whoever waits on the stage
                        self._error = exc
                if self._results:
                    self._tell_loop(self._outbox.put_nowait, (value, self._error))
                else:
                    self._tell_loop(self._room.release)
        finally:
            self._tell_loop(_settle, self._ended)

    async def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        await self._room.acquire()
        self._inbox.put(item)

    async def put_failure(self, error: BaseException) -> None:
        """`error` is raised by take() in this place of the stream."""
        await self._room.acquire()
        self._inbox.put(_Failure(error))

    async def take(self):
        """The next item's result (a stage made with `results`)."""
        value, error = await self._outbox.get()
        self._room.release()
        if error is not None:
            raise error
        return value

    def end(self) -> None:
        """No more items; the thread ends once it has worked through those put."""
        if not self._closing:
            self._closing = True
            self._inbox.put(_END)

    async def close(self) -> None:
        """Waits until every item put was worked on; raises the error `work` raised."""
        self.end()
        await self._finished()
        if self._error is not None:
            raise self._error

    async def abandon(self) -> None:
        """Drops the items not yet worked on and waits for the thread to end (so that
        whatever `work` touches, a pipe say, may be closed afterwards)."""
        self._abandoned = True
        self.end()
        await self._finished()

    async def _finished(self) -> None:
        await asyncio.shield(self._ended)
        # `_ended` is settled from the thread's last statement: the join returns at once,
        # and then the thread is really gone (it was still alive, for a moment, before)
        self._thread.join()


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def mapped(source: AsyncIterable, work: Callable, depth: int, name: str) -> AsyncIterator:
    """work(item) for each item of `source`, computed in a thread of its own while the
    next items are read and the results before are used; an error of `source` or of
    `work` is raised in its place. A consumer that stops early stops both."""
    stage = Stage(lambda item: item if item is _DONE else work(item), depth, name, results=True)

    async def feed() -> None:  # a task of its own: reading overlaps with the work
        try:
            async for item in source:
                await stage.put(item)
        except Exception as exc:  # raised by take() after the items before it
            await stage.put_failure(exc)
            return
        await stage.put(_DONE)

    feeder = asyncio.create_task(feed())
    try:
        while (value := await stage.take()) is not _DONE:
            yield value
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await stage.abandon()


async def read_ahead(read: Callable[[], bytes], depth: int, name: str) -> AsyncIterator[bytes]:
    """read() called over and over in a thread of its own, up to `depth` results
    ahead of the consumer, until it returns b"" (or raises: raised in its place).
    The thread has ended when this iterator has: whatever `read` reads from may be
    closed then."""
    stage = Stage(lambda _token: read(), depth, name, results=True)
    try:
        for _ in range(depth):
            await stage.put(None)
        while chunk := await stage.take():
            yield chunk
            await stage.put(None)
    finally:
        await stage.abandon()
