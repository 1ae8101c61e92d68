"""The resize action (reference §4.5): POST /instances/{id}/action {"resize": {...}}
with a new flavor (flavorRef) or a bigger volume (volume). A flavor resize shows
RESIZE while the provisioner has the scheduler re-claim the host's capacity and the
agent restart the engine with memory settings for the new flavor; the new flavor is
shown once it is done. "No valid host" leaves the instance ACTIVE on its old flavor
with a fault. A volume resize grows the instance's volume (the local driver's is a
loop-mounted ext4 image: services/provisioner/drivers/local_volumes.py)."""
from __future__ import annotations

import json

from sqlalchemy import update

from . import flavors, operations, quotas, validation
from .faults import bad_request
from .rest import now
from .tables import instances


def flavor_spec(row) -> dict:
    return {"id": row.id, "ram_mb": row.ram_mb, "vcpus": row.vcpus, "disk_gb": row.disk_gb}


class Resize:
    PATHS: dict = {}  # an action of POST /instances/{id}/action, described there

    def __init__(self, store):
        self.store = store
        # what is resized -> how; one key per request
        self.kinds = {"flavorRef": self.resize_flavor, "volume": self.resize_volume}

    def instance_actions(self) -> dict:
        return {"resize": self.resize}

    async def resize(self, request, uow, inst, value) -> None:
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in self.kinds:
            raise bad_request("Validation error: resize takes one of "
                              f"{', '.join(sorted(self.kinds))}, e.g. {{\"resize\": {{\"flavorRef\": \"d2\"}}}}.")
        kind, spec = next(iter(value.items()))
        await self.kinds[kind](request, uow, inst, spec)

    async def resize_flavor(self, request, uow, inst, flavor_ref) -> None:
        flavor_id = validation.flavor_ref(flavor_ref)
        new = await flavors.find(uow.conn, flavor_id)
        if new is None:
            raise bad_request(f"Flavor {flavor_id} could not be found.")
        if new.id == inst.flavor_id:
            raise bad_request(f"Instance {inst.id} already has flavor {new.id}: no change was requested.")
        old = await flavors.find(uow.conn, inst.flavor_id)
        if new.ram_mb > old.ram_mb:
            await quotas.check(uow.conn, inst.project_id, {"ram": new.ram_mb - old.ram_mb})
        await operations.start(uow, inst, "resize", {"flavor": flavor_spec(new), "old_flavor": flavor_spec(old)},
                               busy_status="RESIZE")

    async def resize_volume(self, request, uow, inst, spec) -> None:
        """RESIZE while the engine stops, the volume and its file system grow and the
        engine starts again; the new size is shown once done. Volumes only grow."""
        size = validation.volume_size(spec)
        if size < inst.volume_gb:
            raise bad_request(f"Instance {inst.id} has a {inst.volume_gb} GB volume: a volume cannot shrink "
                              f"(asked for {size} GB).")
        if size == inst.volume_gb:
            raise bad_request(f"Instance {inst.id} already has a {size} GB volume: no change was requested.")
        await quotas.check(uow.conn, inst.project_id, {"volumes": size - inst.volume_gb})
        flavor = await flavors.find(uow.conn, inst.flavor_id)
        await operations.start(uow, inst, "resize_volume", {"volume_gb": size, "old_volume_gb": inst.volume_gb,
                                                            "flavor": flavor_spec(flavor)}, busy_status="RESIZE")

    def routes(self, app, prefix: str) -> None:
        """No routes of its own."""


@operations.on_completed("resize_volume")
async def _volume_resized(uow, op, output: dict) -> None:
    await uow.conn.execute(update(instances).where(instances.c.id == op.instance_id).values(
        volume_gb=json.loads(op.arguments)["volume_gb"], updated_at=now()))


@operations.on_completed("resize")
async def _resized(uow, op, output: dict) -> None:
    flavor = json.loads(op.arguments)["flavor"]
    await uow.conn.execute(update(instances).where(instances.c.id == op.instance_id).values(
        flavor_id=flavor["id"], updated_at=now()))
