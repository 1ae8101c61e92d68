"""Request parsing and response helpers the route modules share (Trove's conventions:
reference §1 and §2)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from aiohttp import web

from .faults import Fault, bad_request

PAGE_SIZE = 20


def now() -> datetime:
    return datetime.now(timezone.utc)


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def query_bool(value: str | None) -> bool:
    """Trove's clients send Python-style booleans (True/False): any case."""
    return (value or "").lower() in ("true", "1", "yes")


async def read_json(request: web.Request):
    if not request.can_read_body:
        raise bad_request("Invalid request body.")
    if request.content_type not in ("application/json", "application/vnd.openstack.trove+json"):
        raise Fault(415, f"Unsupported Content-Type {request.content_type!r}; send application/json.")
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise bad_request(f"Malformed request body: {exc}")


def accepted() -> web.Response:
    """Trove's empty 202: no body, but a JSON content type."""
    return web.Response(status=202, content_type="application/json")


def paginate(rows: list, request: web.Request, key=lambda r: r.id):
    """Trove pagination: ordered by `key` ascending, `marker` = the key of the last
    item seen, a next link only when more exist."""
    try:
        limit = min(int(request.query.get("limit", PAGE_SIZE)), PAGE_SIZE)
    except ValueError:
        raise bad_request("limit must be a whole number.")
    if limit < 1:
        raise bad_request("limit must be at least 1.")
    marker = request.query.get("marker")
    ordered = sorted(rows, key=key)
    if marker:
        ordered = [r for r in ordered if key(r) > marker]
    page, more = ordered[:limit], len(ordered) > limit
    next_link = None
    if more:
        url = request.url.update_query(marker=key(page[-1])).with_scheme("https")
        next_link = [{"rel": "next", "href": str(url)}]
    return page, next_link


def paged(key: str, items: list, next_link) -> web.Response:
    doc = {key: items}
    if next_link:
        doc["links"] = next_link
    return web.json_response(doc)
