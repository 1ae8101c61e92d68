"""The OpenAPI document is served without a token and describes exactly the routes
the API serves."""
from __future__ import annotations

import requests

from services.api.http import build_app


def served_routes() -> set[tuple[str, str]]:
    app = build_app(store=None, tracer=None)
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        routes.add((route.method.lower(), route.resource.canonical))
    return routes


def test_every_served_route_is_described_and_nothing_else(stack):
    doc = requests.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert described == served_routes()
    assert doc["openapi"].startswith("3.")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            refs = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert sorted(refs) == sorted(part[1:-1] for part in path.split("/") if part.startswith("{")), path
