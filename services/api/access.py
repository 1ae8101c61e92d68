"""An instance's public access (reference §4.4 `access`, §4.6 PUT `access`): whether it
is reachable on a public address, and from which networks. The provisioner's driver
exposes it (a forwarder to the instance's own address that admits only clients in
`allowed_cidrs`); this module validates the requests, starts the change as an
operation (`set_access`), and records what the provisioner reports back."""
from __future__ import annotations

import ipaddress
import json

from sqlalchemy import update

from . import operations
from .faults import bad_request
from .rest import now
from .tables import instances

EVERYONE = ["0.0.0.0/0", "::/0"]  # Trove's default allowed_cidrs


def requested(value, current: dict | None = None) -> dict:
    """{is_public, allowed_cidrs} from a request's `access`; a key left out keeps its
    `current` value (Trove's defaults: private, open to everyone)."""
    if not isinstance(value, dict) or set(value) - {"is_public", "allowed_cidrs"}:
        raise bad_request("Validation error: access must be an object with is_public (boolean) and/or "
                          "allowed_cidrs (a list of CIDRs).")
    current = current or {"is_public": False, "allowed_cidrs": EVERYONE}
    is_public = value.get("is_public", current["is_public"])
    if not isinstance(is_public, bool):
        raise bad_request("Validation error: access['is_public'] must be true or false.")
    cidrs = value.get("allowed_cidrs", current["allowed_cidrs"])
    return {"is_public": is_public, "allowed_cidrs": allowed_cidrs(cidrs)}


def allowed_cidrs(value) -> list[str]:
    if not isinstance(value, list) or not value:
        raise bad_request("Validation error: access['allowed_cidrs'] must be a non-empty list of CIDRs, "
                          "e.g. [\"203.0.113.0/24\"].")
    networks = []
    for cidr in value:
        try:
            network = ipaddress.ip_network(cidr, strict=True) if isinstance(cidr, str) else None
        except ValueError as exc:
            raise bad_request(f"Validation error: access['allowed_cidrs'] has {cidr!r}, which is not a CIDR "
                              f"({exc}).") from None
        if network is None:
            raise bad_request(f"Validation error: access['allowed_cidrs'] has {cidr!r}, which is not a CIDR.")
        if str(network) in networks:
            raise bad_request(f"Validation error: access['allowed_cidrs'] has {cidr!r} twice.")
        networks.append(str(network))
    return networks


def stored(row) -> dict | None:
    return json.loads(row.access) if row.access else None


def shown(row) -> tuple[dict, list[dict]]:
    """The view's `access` and the public entry of `addresses` (a port only when it is
    not the engine's own)."""
    access = stored(row) or {"is_public": False}
    if not row.public_address:
        return access, []
    public = {"address": row.public_address, "type": "public"}
    if row.public_port:
        public["port"] = row.public_port
    return access, [public]


def public_columns(address: str, port: int) -> dict:
    return {"public_address": address or None, "public_port": port or None}


class Access:
    """The instance update key `access`, for the instance routes."""
    PATHS: dict = {}  # described with PUT /instances/{id}

    def __init__(self, store):
        self.store = store

    def instance_updates(self) -> dict:
        return {"access": self.update}

    def routes(self, app, prefix: str) -> None:
        """No routes of its own."""

    async def update(self, request, uow, inst, value) -> None:
        current = stored(inst)
        wanted = requested(value, current)
        if not wanted["is_public"] and not (current or {}).get("is_public"):
            # private before and after: nothing is exposed, only the record changes
            if inst.task:
                raise operations.busy(inst)
            await uow.conn.execute(update(instances).where(instances.c.id == inst.id).values(
                access=json.dumps(wanted), updated_at=now()))
            return
        # the instance keeps ACTIVE; its task says the change is under way (a second one gets 422)
        await operations.start(uow, inst, "set_access", {"access": wanted})


@operations.on_completed("set_access")
async def applied(uow, op, output: dict) -> None:
    await uow.conn.execute(update(instances).where(instances.c.id == op.instance_id).values(
        access=json.dumps(json.loads(op.arguments)["access"]), updated_at=now(),
        **public_columns(output.get("public_address", ""), output.get("public_port", 0))))
