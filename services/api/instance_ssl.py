"""Trove's SSL routes (reference §3.1, `database ssl ...`): Trove keeps the certificate
and key in Barbican, which Coffer does not use, so for an instance the caller may see
they answer 501 saying so; any other instance is 404 as everywhere."""
from __future__ import annotations

from aiohttp import web

from . import policy
from .faults import Fault
from .instances import INSTANCE, find
from .openapi import V, obj, op
from .rest import reading

NO_SSL = ("SSL for an instance is not supported by Coffer: Trove keeps its certificates in Barbican "
          "(a key manager this deployment does not have).")


class Ssl:
    SCHEMAS = {}
    PATHS = {
        f"{V}/instances/{{instance}}/ssl": {
            "get": op("the instance's SSL status: 501, not supported (Trove needs Barbican); 404 for an "
                      "unknown instance", 200, obj({"ssl": {"type": "object"}}, ["ssl"]), (INSTANCE,)),
            "post": op("enable, disable or roll back SSL: 501, not supported (Trove needs Barbican); 404 for an "
                       "unknown instance", 200, obj({"ssl": {"type": "object"}}, ["ssl"]), (INSTANCE,),
                       body={"type": "object"})},
    }

    def __init__(self, store):
        self.store = store

    async def ssl(self, request):
        policy.authorize(request, "instance:ssl:show" if request.method == "GET" else "instance:ssl:update")
        async with reading(self.store) as conn:
            await find(conn, request)
        raise Fault(501, NO_SSL)

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/instances/{{instance}}/ssl", self.ssl)
        app.router.add_post(f"{prefix}/instances/{{instance}}/ssl", self.ssl)
