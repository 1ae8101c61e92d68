"""Entry point: python -m services.provisioner"""
import asyncio
import logging
import os

from plumbing import topics as T
from plumbing.envelope import Event
from plumbing.logs import log
from plumbing.service import ServiceRuntime

from . import drivers, replica_sets
from .handlers import Provisioner
from .tables import metadata

DEADLINE_TICK_SECONDS = 0.5


async def main() -> None:
    rt = ServiceRuntime("provisioner", metadata)
    driver = drivers.load(os.environ.get("COFFER_COMPUTE_DRIVER", "local"))
    driver.start()
    prov = Provisioner(rt.store, driver, rt.kafka.bootstrap)
    offers = {(o.datastore, o.version): o for o in driver.offers()}

    routes = {
        "coffer.instance.create_requested.v1": lambda e: prov.create_requested(e, offers),
        "coffer.instance.credentials_sealed.v1": prov.credentials_sealed,
        "coffer.instance.delete_requested.v1": prov.delete_requested,
        "coffer.instance.action_requested.v1": prov.action_requested,
        "coffer.placement.placed.v1": prov.placed,
        "coffer.placement.failed.v1": prov.placement_failed,
        "coffer.placement.resized.v1": prov.claim_resized,
        "coffer.placement.resize_failed.v1": prov.claim_resized,
        "coffer.agent.registered.v1": prov.agent_registered,
        "coffer.agent.command_result.v1": prov.command_result,
        "coffer.backup.restore_finished.v1": prov.restore_finished,
        "coffer.failover.requested.v1": prov.switchovers.failover_requested,
    }

    async def dispatch(event: Event) -> None:
        await routes[event.type](event)

    # One loop over all the topics: events about one instance are handled in
    # order, and the range assignor keeps an instance's partitions on one member.
    rt.consume("coffer-provisioner", [T.INSTANCE_REQUESTS, T.PLACEMENT_EVENTS, T.AGENT_EVENTS, T.BACKUP_EVENTS,
                                       T.HEALTH_EVENTS],
               dispatch, set(routes))
    await rt.start()

    # instances first: the API shows them restarting before it shows it is ready
    relaunched = await prov.restore_running_instances()
    await replica_sets.reopen_endpoints(rt.store, driver)
    log(rt.logger, logging.INFO, "instances restored", count=relaunched)
    async with rt.store.uow() as uow:
        for offer in driver.offers():
            await uow.emit(T.DATASTORE_EVENTS, Event(
                "coffer.datastore.version_available.v1", f"{offer.datastore}:{offer.version}",
                {"datastore": offer.datastore, "version": offer.version,
                 "version_number": offer.version_number, "driver": driver.name, "manager": offer.manager}))

    await rt.serve(rt.every(DEADLINE_TICK_SECONDS, prov.expire_deadlines))


if __name__ == "__main__":
    asyncio.run(main())
