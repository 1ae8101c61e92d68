"""What every service process does: logging, tracing, metrics, its database with outbox and
inbox, the producer, consumer loops, the relay, and a clean stop on SIGTERM/SIGINT."""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Awaitable, Callable

from sqlalchemy import MetaData

from . import logs, metrics, tracing
from .bus import BatchHandler, ConsumerLoop, Handler, Producer, ensure_topics
from .config import KafkaSettings, database_url
from .db import create_schema, make_engine
from .logs import log
from .outbox import Store


class ServiceRuntime:
    def __init__(self, name: str, metadata: MetaData):
        self.name = name
        self.logger = logs.setup(name)
        self.tracer = tracing.setup(name)
        self.metrics_port = metrics.setup(name)
        self.kafka = KafkaSettings()
        self.metadata = metadata
        self.engine = make_engine(database_url(name))
        self.store = Store(self.engine, metadata, source=name)
        self.producer = Producer(self.kafka, source=name)
        self.loops: list[ConsumerLoop] = []
        self._tasks: list[asyncio.Task] = []
        self._started = False

    def consume(self, group: str, topics: list[str], handler: Handler,
                types: set[str] | None = None, batch_handler: BatchHandler | None = None) -> None:
        self.loops.append(ConsumerLoop(self.kafka, self.producer, group, topics, handler, types, self.tracer,
                                       batch_handler))

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await create_schema(self.engine, self.metadata)
        await ensure_topics(self.kafka)
        await self.producer.start()
        for loop in self.loops:
            await loop.start()

    def every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A periodic task for `serve`: `job` every `seconds`. A failed round is logged
        and the next one tries again: a database hiccup never stops the service."""
        async def periodic() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception as exc:  # noqa: BLE001 - logged; the next round retries
                    log(self.logger, logging.WARNING, "periodic task failed", task=periodic.__name__,
                        error=repr(exc))
        periodic.__name__ = getattr(job, "__name__", "periodic")
        return periodic

    async def serve(self, *extra: Callable[[], Awaitable[None]]) -> None:
        """Run consumers, relay and extra coroutines until a signal arrives."""
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(sig, stop.set)
        await self.start()
        self._tasks = [asyncio.create_task(loop.run(), name=f"consume:{loop.group}") for loop in self.loops]
        self._tasks.append(asyncio.create_task(self.store.relay(self.producer), name="relay"))
        self._tasks += [asyncio.create_task(fn(), name=getattr(fn, "__name__", "task")) for fn in extra]
        log(self.logger, logging.INFO, "service ready", service=self.name)
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(self._tasks + [stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception():
                log(self.logger, logging.ERROR, "task died", task=task.get_name(),
                    error=repr(task.exception()))
        await self.shutdown()

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for loop in self.loops:
            await loop.stop()
        await self.producer.stop()
        await self.engine.dispose()
        tracing.flush()
