"""Upgrade (reference §4.6): PATCH /instances/{id} {"instance": {"datastore_version":
v}} moves an instance to another installed version of its engine. The versions are
what the compute drivers offer: where the engine has no other version, or the one
named is unknown or the current one, the answer is a 400 that says so."""
from __future__ import annotations

from . import datastores
from .faults import Fault, bad_request


class Upgrade:
    PATHS: dict = {}  # an attribute of PATCH /instances/{id}, described there

    def __init__(self, store):
        self.store = store

    def instance_updates(self) -> dict:
        return {"datastore_version": self.upgrade}

    async def upgrade(self, request, uow, inst, value) -> None:
        if not isinstance(value, str) or not value:
            raise bad_request("Validation error: instance['datastore_version'] must be a version name or id.")
        ds = await datastores.find(uow.conn, inst.datastore)
        versions = await datastores.versions_of(uow.conn, ds.id)
        others = [v.name for v in versions if v.name != inst.datastore_version]
        target = next((v for v in versions if value in (v.id, v.name)), None)
        if target is None:
            raise bad_request(f"Datastore version '{value}' of {ds.name} cannot be found; installed: "
                              f"{', '.join(v.name for v in versions)}.")
        if target.name == inst.datastore_version:
            if not others:
                raise bad_request(f"Instance {inst.id} runs {ds.name} {inst.datastore_version}, the only installed "
                                  f"version of {ds.name}: there is no other version to upgrade to.")
            raise bad_request(f"Instance {inst.id} already runs {ds.name} {inst.datastore_version}; "
                              f"the other installed versions are {', '.join(others)}.")
        raise Fault(501, f"Upgrading {ds.name} from {inst.datastore_version} to {target.name} is not available "
                         "yet in this Coffer release.")

    def routes(self, app, prefix: str) -> None:
        """No routes of its own."""
