"""The OpenAPI 3 document of the API, served without auth at GET /openapi.json.
tests/integration/test_openapi.py keeps it true: every route the router serves is
described here, and nothing else."""
from __future__ import annotations

P = {"name": "project", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "the project (tenant) id; must be the token's project"}


def _param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict, required: list[str] | None = None) -> dict:
    doc = {"type": "object", "properties": properties}
    if required:
        doc["required"] = required
    return doc


def _wrapped(key: str, schema: dict) -> dict:
    return _obj({key: schema}, [key])


def _list(key: str, item: str, paginated: bool = False) -> dict:
    props = {key: {"type": "array", "items": _ref(item)}}
    if paginated:
        props["links"] = {"type": "array", "items": _ref("Link"),
                          "description": "rel `next` only when another page exists"}
    return _obj(props, [key])


FAULT = {"description": "a Trove fault body: {\"<faultName>\": {\"code\": N, \"message\": \"...\"}}",
         "content": {"application/json": {"schema": _ref("Fault")}}}
ERRORS = {str(code): FAULT for code in (400, 401, 403, 404, 413, 415, 422)}

STR = {"type": "string"}
LINKS = {"type": "array", "items": _ref("Link")}
SCHEMAS = {
    "Fault": {"type": "object", "additionalProperties": _obj(
        {"code": {"type": "integer"}, "message": STR}, ["code", "message"])},
    "Link": _obj({"rel": STR, "href": STR}),
    "Version": _obj({"id": STR, "name": STR, "version": STR, "datastore": STR, "links": LINKS},
                    ["id", "name", "version"]),
    "Datastore": _obj({"id": STR, "name": STR, "links": LINKS, "default_version": STR,
                       "versions": {"type": "array", "items": _ref("Version")}}, ["id", "name", "versions"]),
    "Flavor": _obj({"id": {"type": ["integer", "null"]}, "str_id": STR, "name": STR, "ram": {"type": "integer"},
                    "vcpus": {"type": "integer"}, "disk": {"type": "integer"}, "ephemeral": {"type": "integer"},
                    "links": LINKS}, ["id", "str_id", "name", "ram", "vcpus"]),
    "Instance": _obj({
        "id": STR, "name": STR, "links": LINKS,
        "status": {"type": "string", "description": "BUILD, ACTIVE, ERROR, SHUTDOWN, ... (Trove's values)"},
        "operating_status": {"type": "string", "description": "HEALTHY, RESTARTING, UNHEALTHY, ... or \"\""},
        "flavor": _obj({"id": STR, "links": LINKS}), "datastore": _obj(
            {"type": STR, "version": STR, "version_number": STR}),
        "region": STR, "access": _obj({"is_public": {"type": "boolean"}}), "volume": _obj(
            {"size": {"type": "integer"}}),
        "ip": {"type": "array", "items": STR}, "addresses": {"type": "array", "items": _obj(
            {"address": STR, "type": STR})},
        "created": STR, "updated": STR, "locality": STR,
        "fault": _obj({"message": STR, "created": STR, "details": STR})},
        ["id", "name", "status", "operating_status", "flavor", "datastore"]),
    "InstanceCreate": _obj({
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "flavorRef": {"oneOf": [STR, {"type": "integer"}]},
        "volume": _obj({"size": {"oneOf": [{"type": "integer", "minimum": 1}, STR]}, "type": {"type": ["string", "null"]}},
                       ["size"]),
        "datastore": _obj({"type": STR, "version": STR, "version_number": STR}),
        "databases": {"type": "array", "items": _obj({"name": STR, "character_set": STR, "collate": STR}, ["name"])},
        "users": {"type": "array", "items": _obj({"name": STR, "password": STR, "host": STR, "databases": {
            "type": "array", "items": _obj({"name": STR}, ["name"])}}, ["name", "password"])},
        "availability_zone": STR, "nics": {"type": "array"}, "access": {"type": "object"},
        "replica_of": STR, "restorePoint": {"type": "object"}}, ["name", "flavorRef", "volume"]),
    "EventType": _obj({"type": STR, "topic": STR, "category": STR, "description": STR, "fingerprint": STR,
                       "schema": {"type": "object", "description": "the Avro schema"},
                       "versions": {"type": "array", "items": _obj({"fingerprint": STR, "schema": {"type": "object"}})}}),
    "Subscription": _obj({"id": STR, "url": STR, "event_types": {"type": "array", "items": STR},
                          "categories": {"type": "array", "items": STR},
                          "resource_ids": {"type": "array", "items": STR}, "enabled": {"type": "boolean"},
                          "secret": {"type": "string", "description": "only in the answer that set it"},
                          "created": STR, "updated": STR}, ["id", "url", "enabled"]),
    "SubscriptionChange": _obj({"url": STR, "event_types": {"type": "array", "items": STR},
                                "categories": {"type": "array", "items": STR},
                                "resource_ids": {"type": "array", "items": STR}, "enabled": {"type": "boolean"},
                                "secret": {"type": "string", "minLength": 16}}),
    "Delivery": _obj({"id": STR, "event_id": STR, "event_type": STR, "resource_id": STR,
                      "attempts": {"type": "integer"}, "status": {"type": "string", "enum": [
                          "retrying", "delivered", "dead"]},
                      "last_status_code": {"type": ["integer", "null"]}, "last_error": STR,
                      "next_attempt": {"type": ["string", "null"]}, "updated": STR}),
}


def _op(summary: str, status: int, response: dict | None = None, params: tuple = (), body: dict | None = None,
        public: bool = False) -> dict:
    ok = {"description": summary}
    if response is not None:
        ok["content"] = {"application/json": {"schema": response}}
    op = {"summary": summary, "parameters": ([] if public else [P]) + list(params),
          "responses": {str(status): ok, **({} if public else ERRORS)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not public:
        op["security"] = [{"token": []}]
    return op


INSTANCE = _param("instance", "instance id")
FLAVOR = _param("flavor", "flavor id")
DATASTORE = _param("datastore", "datastore id or name")
VERSION = _param("version", "version id or name")
SUBSCRIPTION = _param("subscription", "subscription id")
TARGET = _param("target", "the project whose quotas are meant")
PAGE = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "marker", "in": "query", "schema": {"type": "string"}},
        {"name": "include_clustered", "in": "query", "schema": {"type": "string"}}]
V = "/v1.0/{project}"

PATHS = {
    "/": {"get": _op("API versions", 200, {"type": "object"}, public=True)},
    "/openapi.json": {"get": _op("this document", 200, {"type": "object"}, public=True)},
    f"{V}/flavors": {"get": _op("list flavors", 200, _list("flavors", "Flavor"))},
    f"{V}/flavors/{{flavor}}": {"get": _op("show a flavor", 200, _wrapped("flavor", _ref("Flavor")), (FLAVOR,))},
    f"{V}/datastores": {"get": _op("list datastores", 200, _list("datastores", "Datastore"))},
    f"{V}/datastores/{{datastore}}": {"get": _op("show a datastore", 200, _wrapped("datastore", _ref("Datastore")),
                                                 (DATASTORE,))},
    f"{V}/datastores/{{datastore}}/versions": {"get": _op("list a datastore's versions", 200,
                                                          _list("versions", "Version"), (DATASTORE,))},
    f"{V}/datastores/{{datastore}}/versions/{{version}}": {"get": _op(
        "show a version", 200, _wrapped("version", _ref("Version")), (DATASTORE, VERSION))},
    f"{V}/datastores/versions/{{version}}": {"get": _op("show a version by id", 200,
                                                        _wrapped("version", _ref("Version")), (VERSION,))},
    f"{V}/instances": {
        "get": _op("list instances (list view)", 200, _list("instances", "Instance", True), tuple(PAGE)),
        "post": _op("create an instance (Trove answers 200)", 200, _wrapped("instance", _ref("Instance")),
                    body=_wrapped("instance", _ref("InstanceCreate")))},
    f"{V}/instances/detail": {"get": _op("list instances (detail view)", 200,
                                         _list("instances", "Instance", True), tuple(PAGE))},
    f"{V}/instances/{{instance}}": {
        "get": _op("show an instance", 200, _wrapped("instance", _ref("Instance")), (INSTANCE,)),
        "delete": _op("delete an instance (allowed in BUILD too)", 202, None, (INSTANCE,))},
    f"{V}/limits": {"get": _op("absolute limits of the project", 200, _obj({"limits": {"type": "array", "items": _obj({
        "verb": STR, "max_instances": {"type": "integer"}, "max_ram": {"type": "integer"},
        "max_volumes": {"type": "integer"}, "max_backups": {"type": "integer"}})}}))},
    f"{V}/mgmt/quotas/{{target}}": {
        "get": _op("a project's quota usage (its own, or any for an admin)", 200, _obj({"quotas": {
            "type": "array", "items": _obj({"resource": STR, "in_use": {"type": "integer"},
                                            "reserved": {"type": "integer"}, "limit": {"type": "integer"}})}}),
            (TARGET,)),
        "put": _op("set a project's quota limits (admin; Trove answers 200)", 200,
                   _obj({"quotas": {"type": "object", "additionalProperties": {"type": "integer"}}}), (TARGET,),
                   body=_obj({"quotas": {"type": "object", "additionalProperties": {
                       "type": ["integer", "null"], "minimum": -1}}}, ["quotas"]))},
    f"{V}/event-types": {"get": _op("public event types with their Avro schemas and fingerprints", 200,
                                    _obj({"event_types": {"type": "array", "items": _ref("EventType")},
                                          "categories": {"type": "array", "items": STR}}))},
    f"{V}/subscriptions": {
        "get": _op("list webhook subscriptions", 200, _list("subscriptions", "Subscription")),
        "post": _op("subscribe a URL to events", 200, _wrapped("subscription", _ref("Subscription")),
                    body=_wrapped("subscription", _ref("SubscriptionChange")))},
    f"{V}/subscriptions/{{subscription}}": {
        "get": _op("show a subscription", 200, _wrapped("subscription", _ref("Subscription")), (SUBSCRIPTION,)),
        "patch": _op("change a subscription", 200, _wrapped("subscription", _ref("Subscription")), (SUBSCRIPTION,),
                     body=_wrapped("subscription", _ref("SubscriptionChange"))),
        "delete": _op("delete a subscription", 202, None, (SUBSCRIPTION,))},
    f"{V}/subscriptions/{{subscription}}/deliveries": {"get": _op(
        "recent deliveries of a subscription", 200, _list("deliveries", "Delivery"), (SUBSCRIPTION,))},
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coffer", "version": "1.0",
                 "description": "Trove v1.0 compatible database-as-a-service API, with Coffer's extensions "
                                "(event types, webhook subscriptions)."},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
    }
