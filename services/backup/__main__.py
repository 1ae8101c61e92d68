"""Entry point: python -m services.backup"""
import asyncio
import os

from plumbing import backupkeys, objectstore
from plumbing import topics as T
from plumbing.service import ServiceRuntime

from . import schedules
from .handlers import BackupHandlers
from .tables import metadata

EXPIRY_TICK_SECONDS = 5.0
SCHEDULE_TICK_SECONDS = float(os.environ.get("COFFER_BACKUP_SCHEDULE_TICK_SECONDS", "1"))


async def main() -> None:
    rt = ServiceRuntime("backup", metadata)
    handlers = BackupHandlers(rt.store, objectstore.from_environment(), backupkeys.master_key())
    routes = {
        "coffer.instance.active.v1": handlers.instance_event,
        "coffer.instance.deleted.v1": handlers.instance_event,
        "coffer.instance.failed.v1": handlers.instance_event,
        "coffer.instance.replication_changed.v1": handlers.replication_changed,
        "coffer.agent.registered.v1": handlers.agent_registered,
        "coffer.agent.command_result.v1": handlers.command_result,
        "coffer.backup.requested.v1": handlers.requested,
        "coffer.backup.delete_requested.v1": handlers.delete_requested,
        "coffer.backup.restore_requested.v1": handlers.restore_requested,
        "coffer.backup.strategy_requested.v1": handlers.strategy_requested,
        "coffer.backup.schedule_requested.v1": handlers.schedule_requested,
        "coffer.backup.import_requested.v1": handlers.import_requested,
    }

    async def handle(event):
        await routes[event.type](event)

    rt.consume("coffer-backup", [T.INSTANCE_EVENTS, T.AGENT_EVENTS, T.BACKUP_REQUESTS], handle, set(routes))

    await rt.serve(rt.every(EXPIRY_TICK_SECONDS, handlers.expire),
                   rt.every(SCHEDULE_TICK_SECONDS, lambda: schedules.fire_due(rt.store)))


if __name__ == "__main__":
    asyncio.run(main())
