"""The OpenAPI 3 document of the API, served without auth at GET /openapi.json.
Each route group describes its own paths (PATHS) and shapes (SCHEMAS) next to its
handlers with the builders here; document() joins them.
tests/integration/test_openapi.py keeps it true: every route the router serves is
described, and nothing else."""
from __future__ import annotations

V = "/v1.0/{project}"
P = {"name": "project", "in": "path", "required": True, "schema": {"type": "string"},
     "description": "the project (tenant) id; must be the token's project"}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}


def param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "schema": schema or STR, "description": description}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, required: list[str] | None = None) -> dict:
    doc = {"type": "object", "properties": properties}
    if required:
        doc["required"] = required
    return doc


def wrapped(key: str, schema: dict) -> dict:
    return obj({key: schema}, [key])


def listing(key: str, item: str, paginated: bool = False) -> dict:
    props = {key: {"type": "array", "items": ref(item)}}
    if paginated:
        props["links"] = {"type": "array", "items": ref("Link"),
                          "description": "rel `next` only when another page exists"}
    return obj(props, [key])


FORMAT_SUFFIX = ".json"


def format_suffixed(path: str) -> list[str]:
    """The path, and where it ends in a fixed segment the same path with Trove's `.json`
    format suffix (the "mysql" extension's router matches one, reference §3.2); a path
    ending in a {variable} takes the suffix in the variable (see rest.path_name)."""
    return [path] if path.endswith("}") else [path, path + FORMAT_SUFFIX]


def with_format_suffix(paths: dict) -> dict:
    """`paths` (PATHS of a route group) with their `.json` twins described too."""
    return {suffixed: operations for path, operations in paths.items() for suffixed in format_suffixed(path)}


LINKS = {"type": "array", "items": ref("Link")}
PAGE = [query("limit", "page size (at most 20)", {"type": "integer", "minimum": 1}),
        query("marker", "the last item of the previous page")]
FAULT = {"description": "a Trove fault body: {\"<faultName>\": {\"code\": N, \"message\": \"...\"}}",
         "content": {"application/json": {"schema": ref("Fault")}}}
# 413 is also the rate limit (with Retry-After); 503: Keystone mode with Keystone unreachable
ERRORS = {str(code): FAULT for code in (400, 401, 403, 404, 409, 413, 415, 422, 501, 503)}

SCHEMAS = {
    "Fault": {"type": "object", "additionalProperties": obj(
        {"code": {"type": "integer"}, "message": STR}, ["code", "message"])},
    "Link": obj({"rel": STR, "href": STR}),
}


def op(summary: str, status: int, response: dict | None = None, params: tuple = (), body: dict | None = None,
       public: bool = False) -> dict:
    ok = {"description": summary}
    if response is not None:
        ok["content"] = {"application/json": {"schema": response}}
    operation = {"summary": summary, "parameters": ([] if public else [P]) + list(params),
                 "responses": {str(status): ok, **({} if public else ERRORS)}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not public:
        operation["security"] = [{"token": []}]
    return operation


PATHS = {
    "/": {"get": op("API versions", 200, {"type": "object"}, public=True)},
    "/openapi.json": {"get": op("this document", 200, {"type": "object"}, public=True)},
}


def document(groups) -> dict:
    """The document for these route groups (each with PATHS and SCHEMAS)."""
    paths, schemas = dict(PATHS), dict(SCHEMAS)
    for group in groups:
        for path, operations in group.PATHS.items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(getattr(group, "SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coffer", "version": "1.0",
                 "description": "Trove v1.0 compatible database-as-a-service API, with Coffer's extensions "
                                "(event types, webhook subscriptions, schedules)."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
    }
