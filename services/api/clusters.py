"""Trove's clusters (reference §3.1, §4.12), which are not a Coffer feature: replication
is an instance's replicas (replica_of). The routes answer as an empty collection does,
so that Trove tooling listing clusters sees none and one naming a cluster gets 404;
creating one is refused with 501 and where to look instead."""
from __future__ import annotations

from aiohttp import web

from . import policy, validation
from .faults import Fault, not_found
from .openapi import STR, V, obj, op, param
from .rest import read_json

CLUSTER = param("cluster", "cluster id")
MEMBER = param("instance", "instance id")
NO_CLUSTERS = "Clusters are not supported by Coffer; use replicas (replica_of) for replication."
EMPTY = obj({"clusters": {"type": "array", "maxItems": 0}}, ["clusters"])


def no_such_cluster(request) -> Fault:
    return not_found(f"Cluster '{request.match_info['cluster']}' cannot be found.")


class Clusters:
    SCHEMAS = {}
    PATHS = {
        f"{V}/clusters": {
            "get": op("list clusters: always none (Coffer replicates with replica_of)", 200, EMPTY),
            "post": op("create a cluster: 501, not a Coffer feature (use replica_of)", 200, None,
                       body=obj({"cluster": {"type": "object"}}, ["cluster"]))},
        f"{V}/clusters/{{cluster}}": {
            "get": op("show a cluster: 404, there are none", 200, obj({"cluster": {"type": "object"}}), (CLUSTER,)),
            "post": op("a cluster action: 404, there are none", 202, None, (CLUSTER,), body={"type": "object"}),
            "delete": op("delete a cluster: 404, there are none", 202, None, (CLUSTER,))},
        f"{V}/clusters/{{cluster}}/instances/{{instance}}": {
            "get": op("a cluster member: 404, there are no clusters", 200, obj({"instance": {"type": "object"}}),
                      (CLUSTER, MEMBER))},
        f"{V}/clusters/{{cluster}}/root": {
            "get": op("a cluster's root: 404, there are no clusters", 200, obj({"rootEnabled": STR}), (CLUSTER,)),
            "post": op("enable a cluster's root: 404, there are no clusters", 200, obj({"user": {"type": "object"}}),
                       (CLUSTER,))},
        f"{V}/mgmt/clusters": {"get": op("every project's clusters (admin): none", 200, EMPTY)},
        f"{V}/mgmt/clusters/{{cluster}}": {
            "get": op("a cluster, mgmt view (admin): 404, there are none", 200, obj({"cluster": {"type": "object"}}),
                      (CLUSTER,))},
        f"{V}/mgmt/clusters/{{cluster}}/action": {
            "post": op("an mgmt cluster action (admin): 404, there are none", 202, None, (CLUSTER,),
                       body={"type": "object"})},
    }

    async def list(self, request):
        policy.authorize(request, "cluster:index")
        return web.json_response({"clusters": []})

    async def create(self, request):
        policy.authorize(request, "cluster:create")
        validation.body_object(await read_json(request), "cluster")
        raise Fault(501, NO_CLUSTERS)

    async def read_one(self, request):
        policy.authorize(request, "cluster:show")
        raise no_such_cluster(request)

    async def change_one(self, request):
        policy.authorize(request, "cluster:action" if request.method == "POST" else "cluster:delete")
        raise no_such_cluster(request)

    async def mgmt_list(self, request):
        policy.authorize(request, "mgmt:cluster:index")
        return web.json_response({"clusters": []})

    async def mgmt_one(self, request):
        policy.authorize(request, "mgmt:cluster:show" if request.method == "GET" else "mgmt:cluster:action")
        raise no_such_cluster(request)

    def routes(self, app: web.Application, prefix: str) -> None:
        app.router.add_get(f"{prefix}/clusters", self.list)
        app.router.add_post(f"{prefix}/clusters", self.create)
        app.router.add_get(f"{prefix}/clusters/{{cluster}}", self.read_one)
        app.router.add_post(f"{prefix}/clusters/{{cluster}}", self.change_one)
        app.router.add_delete(f"{prefix}/clusters/{{cluster}}", self.change_one)
        app.router.add_get(f"{prefix}/clusters/{{cluster}}/instances/{{instance}}", self.read_one)
        app.router.add_get(f"{prefix}/clusters/{{cluster}}/root", self.read_one)
        app.router.add_post(f"{prefix}/clusters/{{cluster}}/root", self.change_one)
        app.router.add_get(f"{prefix}/mgmt/clusters", self.mgmt_list)
        app.router.add_get(f"{prefix}/mgmt/clusters/{{cluster}}", self.mgmt_one)
        app.router.add_post(f"{prefix}/mgmt/clusters/{{cluster}}/action", self.mgmt_one)
