"""The agent's command channel: it reads only the partition its instance id hashes
to (skipping other instances' records) and remembers how far it got on disk.

The embedded broker answers a fetch only when the fetch wait ends, so the wait is
both the command latency and the idle cost. The channel polls fast while commands
flow and slowly once it has been idle for a while."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from plumbing import topics as T

FAST_WAIT_MS = int(os.environ.get("COFFER_KAFKA_FETCH_MAX_WAIT_MS", "20"))
IDLE_WAIT_MS = int(os.environ.get("COFFER_AGENT_IDLE_FETCH_MAX_WAIT_MS", "100"))
IDLE_AFTER_SECONDS = float(os.environ.get("COFFER_AGENT_IDLE_AFTER_SECONDS", "5"))


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class CommandChannel:
    def __init__(self, bootstrap: str, instance_id: str, offset_file: Path):
        self.bootstrap, self.instance_id, self.offset_file = bootstrap, instance_id, offset_file
        self.consumer: AIOKafkaConsumer | None = None
        self.tp: TopicPartition | None = None
        self.wait_ms = FAST_WAIT_MS
        self.last_command = time.monotonic()

    def _saved_offset(self) -> int | None:
        try:
            return int(self.offset_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    async def _connect(self, wait_ms: int) -> None:
        self.wait_ms = wait_ms
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         group_id=None, auto_offset_reset="earliest",
                                         fetch_max_wait_ms=wait_ms)
        await self.consumer.start()
        if self.tp is None:
            partitions = self.consumer.partitions_for_topic(T.AGENT_COMMANDS)
            if not partitions:
                await self.consumer._client.force_metadata_update()
                partitions = self.consumer.partitions_for_topic(T.AGENT_COMMANDS)
            self.tp = TopicPartition(T.AGENT_COMMANDS, partition_for(self.instance_id, len(partitions)))
        self.consumer.assign([self.tp])
        offset = self._saved_offset()
        if offset is None:
            await self.consumer.seek_to_beginning(self.tp)
        else:
            self.consumer.seek(self.tp, offset)

    async def start(self) -> None:
        await self._connect(FAST_WAIT_MS)

    async def _switch(self, wait_ms: int) -> None:
        await self.consumer.stop()
        await self._connect(wait_ms)

    async def records(self):
        while True:
            try:
                batch = await self.consumer.getmany(self.tp, timeout_ms=500)
            except KafkaError:  # the broker is away: the engine keeps running, commands wait
                await asyncio.sleep(1)
                continue
            mine = False
            for record in batch.get(self.tp, []):
                if record.key == self.instance_id.encode():
                    mine = True
                    self.last_command = time.monotonic()
                    yield record
                self.done(record.offset + 1)
            if mine and self.wait_ms != FAST_WAIT_MS:
                await self._switch(FAST_WAIT_MS)  # a command often brings followers
            elif self.wait_ms != IDLE_WAIT_MS and time.monotonic() - self.last_command > IDLE_AFTER_SECONDS:
                await self._switch(IDLE_WAIT_MS)

    def done(self, offset: int) -> None:
        tmp = self.offset_file.with_suffix(".tmp")
        tmp.write_text(str(offset))
        tmp.replace(self.offset_file)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
