"""Request parsing and response helpers the route modules share (Trove's conventions:
reference §1 and §2)."""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from .faults import Fault, bad_request

PAGE_SIZE = 20


def now() -> datetime:
    return datetime.now(timezone.utc)


def reading(store):
    """A connection for a read-only request: autocommit, so a read is one round trip
    to the database instead of BEGIN, the query and ROLLBACK."""
    return store.engine.execution_options(isolation_level="AUTOCOMMIT").connect()


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def query_bool(value: str | None) -> bool:
    """Trove's clients send Python-style booleans (True/False): any case."""
    return (value or "").lower() in ("true", "1", "yes")


def path_name(request: web.Request, key: str) -> str:
    """A name from the path; as the last segment it may carry Trove's `.json` format
    suffix, which is not part of it (reference §4.8: `bob.json` is the user bob)."""
    value = request.match_info[key]
    if value.endswith(".json") and request.match_info.route.resource.canonical.endswith("{%s}" % key):
        return value[:-len(".json")]
    return value


async def read_json(request: web.Request):
    if not request.can_read_body:
        raise bad_request("Invalid request body.")
    if request.content_type not in ("application/json", "application/vnd.openstack.trove+json"):
        raise Fault(415, f"Unsupported Content-Type {request.content_type!r}; send application/json.")
    try:
        return await request.json()
    except ValueError as exc:  # not JSON, or not even text in the declared charset
        raise bad_request(f"Malformed request body: {exc}")


def accepted() -> web.Response:
    """Trove's empty 202: no body, but a JSON content type."""
    return web.Response(status=202, content_type="application/json")


def page_limit(request: web.Request) -> int:
    """The page size asked for, capped at Trove's PAGE_SIZE; 400 when not a whole number of 1 or more."""
    try:
        limit = min(int(request.query.get("limit", PAGE_SIZE)), PAGE_SIZE)
    except ValueError:
        raise bad_request("limit must be a whole number.")
    if limit < 1:
        raise bad_request("limit must be at least 1.")
    return limit


def next_link(request: web.Request, marker) -> list[dict]:
    """Trove's next link: the same URL with the new marker, scheme https."""
    return [{"rel": "next", "href": str(request.url.update_query(marker=str(marker)).with_scheme("https"))}]


def paginate(rows: list, request: web.Request, key=lambda r: r.id):
    """Trove pagination of rows in hand (users and databases, named by the guest):
    ordered by `key` ascending, `marker` = the key of the last item seen, a next
    link only when more exist."""
    limit = page_limit(request)
    marker = request.query.get("marker")
    ordered = sorted(rows, key=key)
    if marker:
        ordered = [r for r in ordered if key(r) > marker]
    page, more = ordered[:limit], len(ordered) > limit
    return page, (next_link(request, key(page[-1])) if more else None)


async def paginate_query(conn, query, column, request: web.Request):
    """The same, done by the database (instances, configurations: marker = the id
    of the last item): only one page and one more row are read."""
    limit = page_limit(request)
    marker = request.query.get("marker")
    if marker:
        query = query.where(column > marker)
    rows = (await conn.execute(query.order_by(column).limit(limit + 1))).all()
    page, more = rows[:limit], len(rows) > limit
    return page, (next_link(request, getattr(page[-1], column.key)) if more else None)


def paged(key: str, items: list, next_link) -> web.Response:
    doc = {key: items}
    if next_link:
        doc["links"] = next_link
    return web.json_response(doc)
