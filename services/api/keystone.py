"""Keystone identity mode: X-Auth-Token is validated against a real Keystone v3
(`GET /v3/auth/tokens` with the API's own service token, as keystonemiddleware
does), each answer cached until the token expires (at most `cache_seconds`, so a
revocation takes effect within that time); the API registers itself in the
catalog as service type `database` at start-up."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

import aiohttp

from plumbing.logs import log

from .faults import Fault
from .identity import Identity

logger = logging.getLogger("api")
CACHE_ENTRIES = 10_000
TIMEOUT = aiohttp.ClientTimeout(total=10)
REVOCATION_GRANULARITY_SECONDS = 1.0


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class KeystoneSettings:
    url: str                    # the identity v3 endpoint, e.g. http://keystone:5000/v3
    username: str               # the API's service user (role `service`; `admin` too to register itself)
    password: str
    project: str
    user_domain: str = "default"
    project_domain: str = "default"
    region: str = "RegionOne"
    register: bool = True
    public_url: str = "http://127.0.0.1:8779"   # where clients reach the API
    interfaces: tuple[str, ...] = ("public", "internal")
    service_name: str = "trove"
    cache_seconds: float = 300.0

    @classmethod
    def from_env(cls) -> "KeystoneSettings":
        url = _env("COFFER_KEYSTONE_URL")
        if not url:
            raise ValueError("COFFER_AUTH=keystone needs COFFER_KEYSTONE_URL (the identity v3 endpoint)")
        host, port = _env("COFFER_API_HOST", "127.0.0.1"), _env("COFFER_API_PORT", "8779")
        return cls(url=url.rstrip("/"), username=_env("COFFER_KEYSTONE_USERNAME", "coffer"),
                   password=_env("COFFER_KEYSTONE_PASSWORD"), project=_env("COFFER_KEYSTONE_PROJECT", "service"),
                   user_domain=_env("COFFER_KEYSTONE_USER_DOMAIN", "default"),
                   project_domain=_env("COFFER_KEYSTONE_PROJECT_DOMAIN", "default"),
                   region=_env("COFFER_KEYSTONE_REGION", "RegionOne"),
                   register=_env("COFFER_KEYSTONE_REGISTER", "true").lower() in ("1", "true", "yes"),
                   public_url=_env("COFFER_API_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
                   interfaces=tuple(i for i in _env("COFFER_KEYSTONE_INTERFACES", "public,internal").split(",")
                                    if i),
                   service_name=_env("COFFER_KEYSTONE_SERVICE_NAME", "trove"),
                   cache_seconds=float(_env("COFFER_KEYSTONE_CACHE_SECONDS", "300")))


def parse_expiry(value: str) -> float:
    """Keystone's expires_at (e.g. 2026-11-30T11:30:52.000000Z) as a time.time() value."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


def unavailable(reason: str) -> Fault:
    return Fault(503, f"The identity service is not available: {reason}")


class KeystoneTokens:
    def __init__(self, settings: KeystoneSettings):
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._service_token: str | None = None
        self._service_lock = asyncio.Lock()
        # token -> (identity or None for an invalid token, valid until time.time())
        self._cache: OrderedDict[str, tuple[Identity | None, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        if self.settings.register:
            try:
                await self.register()
            except (Fault, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log(logger, logging.ERROR, "could not register in the Keystone catalog; register the "
                    "`database` service and its endpoints by hand, or give the service user the admin role",
                    error=str(exc))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- the service's own token -------------------------------------------------------
    async def _authenticate(self) -> str:
        s = self.settings
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": s.username, "password": s.password, "domain": {"id": s.user_domain}}}},
            "scope": {"project": {"name": s.project, "domain": {"id": s.project_domain}}}}}
        async with self._session.post(f"{s.url}/auth/tokens?nocatalog", json=body) as response:
            if response.status != 201:
                raise unavailable(f"the service user {s.username!r} cannot log in (HTTP {response.status})")
            return response.headers["X-Subject-Token"]

    async def _token(self, stale: str | None = None) -> str:
        """The service token; a new one when `stale` (refused with 401) is the current one."""
        async with self._service_lock:
            if self._service_token is None or self._service_token == stale:
                self._service_token = await self._authenticate()
            return self._service_token

    async def _call(self, method: str, path: str, **kwargs) -> tuple[int, dict, dict]:
        """A call with the service token. On 401 (expired or revoked) a new login and
        a retry; once more a second later if that token is refused too: Keystone
        records revocations to the second, so a login in the same second as a
        revocation gets a token that is already revoked."""
        headers = kwargs.pop("headers", {})
        token = await self._token()
        for attempt in range(3):
            try:
                async with self._session.request(method, self.settings.url + path,
                                                 headers={**headers, "X-Auth-Token": token}, **kwargs) as response:
                    body = await response.json(content_type=None) if response.status != 204 else {}
                    status, response_headers = response.status, dict(response.headers)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise unavailable(repr(exc))
            if status != 401:
                return status, body or {}, response_headers
            if attempt == 1:
                await asyncio.sleep(REVOCATION_GRANULARITY_SECONDS)
            token = await self._token(stale=token)
        raise unavailable("Keystone refuses the service user's token")

    # -- validating tokens -----------------------------------------------------------------
    async def identify(self, token: str) -> Identity | None:
        if not token.isascii() or not token.isprintable():
            return None  # no Keystone token looks like that, and it could not travel in a header
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        waiting = self._inflight.get(token)
        if waiting is not None:  # one Keystone call per token, however many requests carry it
            return await asyncio.shield(waiting)
        future = self._inflight[token] = asyncio.get_running_loop().create_future()
        try:
            identity, until = await self._validate(token)
            self._remember(token, identity, until)
            future.set_result(identity)
            return identity
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[token]

    async def _validate(self, token: str) -> tuple[Identity | None, float]:
        status, body, _ = await self._call("GET", "/auth/tokens?nocatalog", headers={"X-Subject-Token": token})
        horizon = time.time() + self.settings.cache_seconds
        if status == 404:  # not a token Keystone knows, expired or revoked: never valid again
            return None, horizon
        if status != 200:
            raise unavailable(f"token validation answered HTTP {status}")
        t = body["token"]
        identity = Identity(project=(t.get("project") or {}).get("id", ""), user=t["user"]["id"],
                            roles=frozenset(r["name"] for r in t.get("roles", [])))
        return identity, min(parse_expiry(t["expires_at"]), horizon)

    def _remember(self, token: str, identity: Identity | None, until: float) -> None:
        self._cache[token] = (identity, until)
        self._cache.move_to_end(token)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    # -- the catalog --------------------------------------------------------------------------
    async def register(self) -> None:
        """Service type `database` and an endpoint per interface with Trove's URL
        template; created when missing, corrected when the URL changed."""
        s = self.settings
        status, body, _ = await self._call("GET", "/services?type=database")
        if status != 200:
            raise unavailable(f"listing services answered HTTP {status}")
        services = body["services"]
        if services:
            service_id = services[0]["id"]
        else:
            status, body, _ = await self._call("POST", "/services", json={"service": {
                "type": "database", "name": s.service_name, "description": "Coffer (Trove API)", "enabled": True}})
            if status != 201:
                raise unavailable(f"creating the database service answered HTTP {status}")
            service_id = body["service"]["id"]
        url = f"{s.public_url}/v1.0/$(project_id)s"
        status, body, _ = await self._call("GET", f"/endpoints?service_id={service_id}")
        existing = {(e["interface"], e.get("region_id")): e for e in body.get("endpoints", [])}
        for interface in s.interfaces:
            found = existing.get((interface, s.region))
            if found is None:
                status, _, _ = await self._call("POST", "/endpoints", json={"endpoint": {
                    "service_id": service_id, "interface": interface, "region_id": s.region, "url": url,
                    "enabled": True}})
            elif found["url"] != url:
                status, _, _ = await self._call("PATCH", f"/endpoints/{found['id']}", json={"endpoint": {"url": url}})
            else:
                continue
            if status not in (200, 201):
                raise unavailable(f"registering the {interface} endpoint answered HTTP {status}")
        log(logger, logging.INFO, "registered in the Keystone catalog", service_id=service_id, url=url)
