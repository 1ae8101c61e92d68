"""What the heartbeat reports about Redis."""
from __future__ import annotations

from redis.asyncio import Redis


async def counters(client: Redis) -> tuple[int, int, int]:
    """(connected clients, commands processed, the server's pid), from INFO."""
    info = await client.info("default")
    return int(info["connected_clients"]), int(info["total_commands_processed"]), int(info["process_id"])
