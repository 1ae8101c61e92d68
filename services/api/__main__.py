"""Entry point: python -m services.api"""
import asyncio
import gc
import os

from aiohttp import web

from plumbing import topics as T
from plumbing.service import ServiceRuntime

from . import backups_view, operations, schedules
from .http import build_app
from .projections import Projections
from .seed import seed_flavors
from .tables import metadata
from .agent_telemetry import TYPE as heartbeat_type, AgentTelemetry

EXPIRY_TICK_SECONDS = 5.0


async def main() -> None:
    rt = ServiceRuntime("api", metadata)
    projections = Projections(rt.store)
    rt.consume("coffer-api", [T.INSTANCE_EVENTS, T.HEALTH_EVENTS, T.AGENT_EVENTS, T.DATASTORE_EVENTS,
                              T.SUBSCRIPTION_EVENTS, T.BACKUP_EVENTS],
               projections.handle, set(projections.routes), batch_handler=projections.handle_batch)
    telemetry = AgentTelemetry(rt.store)
    rt.consume("coffer-api-telemetry", [T.TELEMETRY], telemetry.handle, {heartbeat_type},
               batch_handler=telemetry.handle_batch)
    await rt.start()
    async with rt.store.uow() as uow:
        await seed_flavors(uow.conn)

    runner = web.AppRunner(build_app(rt.store, rt.tracer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, os.environ.get("COFFER_API_HOST", "127.0.0.1"),
                       int(os.environ.get("COFFER_API_PORT", "8779")))
    await site.start()
    # what start-up made (modules, schemas, the app) lives as long as the process: out of
    # the collector's sight, a full collection no longer pauses every request for it
    # (start-up's garbage is collected first, or it would be kept for good)
    gc.collect()
    gc.freeze()

    async def expire_unanswered_operations():
        await operations.expire_unanswered(rt.store)
        await backups_view.expire_unanswered(rt.store, operations.OUTCOME_TIMEOUT_SECONDS)

    async def fire_schedules():
        await schedules.fire_due(rt.store)

    try:
        await rt.serve(rt.every(EXPIRY_TICK_SECONDS, expire_unanswered_operations),
                       rt.every(schedules.TICK_SECONDS, fire_schedules))
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
