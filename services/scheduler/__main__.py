"""Entry point: python -m services.scheduler"""
import asyncio
import os

from plumbing import topics as T
from plumbing.service import ServiceRuntime

from . import handlers, placement
from .tables import metadata


async def main() -> None:
    rt = ServiceRuntime("scheduler", metadata)
    inventory = placement.parse_inventory(os.environ.get("COFFER_HOSTS", placement.DEFAULT_INVENTORY))

    requests = {"coffer.instance.create_requested.v1": handlers.place,
                "coffer.placement.resize_requested.v1": handlers.resize_claim}

    async def on_request(event):
        await requests[event.type](rt.store, event)

    async def on_instance_end(event):
        await handlers.release(rt.store, event)

    rt.consume("coffer-scheduler", [T.INSTANCE_REQUESTS], on_request, set(requests))
    rt.consume("coffer-scheduler-release", [T.INSTANCE_EVENTS], on_instance_end,
               {"coffer.instance.deleted.v1", "coffer.instance.failed.v1"})
    await rt.start()
    await handlers.declare_inventory(rt.store, inventory)
    await rt.serve()


if __name__ == "__main__":
    asyncio.run(main())
