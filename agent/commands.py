"""The agent's command channel: it reads only the partition its instance id hashes
to (skipping other instances' records) and remembers how far it got on disk."""
from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from plumbing import topics as T


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class CommandChannel:
    def __init__(self, bootstrap: str, instance_id: str, offset_file: Path, fetch_max_wait_ms: int = 20):
        self.instance_id, self.offset_file = instance_id, offset_file
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                         group_id=None, auto_offset_reset="earliest",
                                         fetch_max_wait_ms=fetch_max_wait_ms)
        self.tp: TopicPartition | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(T.AGENT_COMMANDS)
        if not partitions:
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(T.AGENT_COMMANDS)
        self.tp = TopicPartition(T.AGENT_COMMANDS, partition_for(self.instance_id, len(partitions)))
        self.consumer.assign([self.tp])
        try:
            self.consumer.seek(self.tp, int(self.offset_file.read_text()))
        except (FileNotFoundError, ValueError):
            await self.consumer.seek_to_beginning(self.tp)

    async def records(self):
        while True:
            batch = await self.consumer.getmany(self.tp, timeout_ms=500)
            for record in batch.get(self.tp, []):
                if record.key == self.instance_id.encode():
                    yield record
                self.done(record.offset + 1)

    def done(self, offset: int) -> None:
        tmp = self.offset_file.with_suffix(".tmp")
        tmp.write_text(str(offset))
        tmp.replace(self.offset_file)

    async def stop(self) -> None:
        await self.consumer.stop()
