"""Trove error bodies: {"<faultName>": {"code": N, "message": "..."}}."""
from __future__ import annotations

import json

from aiohttp import web

FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               409: "conflict", 413: "overLimit", 415: "badMediaType", 422: "unprocessableEntity",
               500: "instanceFault", 501: "notImplemented", 503: "serviceUnavailable"}


class Fault(web.HTTPException):
    def __init__(self, status: int, message: str, headers: dict | None = None, **extra):
        self.status_code = status
        super().__init__(headers=headers, text=json.dumps(
            {FAULT_NAMES[status]: {"code": status, "message": message, **extra}}), content_type="application/json")


def bad_request(message: str) -> Fault:
    return Fault(400, message)


def not_found(message: str = "The resource could not be found.") -> Fault:
    return Fault(404, message)


def rate_limited(retry_after: int, details: str) -> Fault:
    """Trove's rate-limit fault: overLimit with details and retryAfter, and a Retry-After header."""
    return Fault(413, "This request was rate-limited.", headers={"Retry-After": str(retry_after)},
                 details=details, retryAfter=str(retry_after))
