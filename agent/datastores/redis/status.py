"""What the heartbeat reports about Redis."""
from __future__ import annotations

from redis.asyncio import Redis


async def counters(client: Redis) -> tuple[int, int, int, float | None, int]:
    """(connected clients, commands processed, the server's pid, keyspace hit ratio,
    the dataset's size in memory), from INFO."""
    info = await client.info("default")
    hits, misses = int(info["keyspace_hits"]), int(info["keyspace_misses"])
    return (int(info["connected_clients"]), int(info["total_commands_processed"]), int(info["process_id"]),
            hits / (hits + misses) if hits + misses else None, int(info.get("used_memory_dataset", 0)))
