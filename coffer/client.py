"""The CLI's view of the REST API: event types and webhook subscriptions."""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


class ApiError(Exception):
    pass


class ApiClient:
    def __init__(self, url: str, project: str, token: str):
        if not project or not token:
            raise ApiError("give --project and --token (or COFFER_PROJECT and COFFER_TOKEN)")
        self.base, self.token = f"{url.rstrip('/')}/v1.0/{project}", token

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "X-Auth-Token": self.token, "Accept": "application/json",
            **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                fault = next(iter(json.loads(exc.read()).values()))
                message = fault.get("message", str(exc))
            except (ValueError, StopIteration, AttributeError):
                message = str(exc)
            raise ApiError(f"{exc.code}: {message}") from None
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach the API at {self.base}: {exc.reason}") from None
        return json.loads(text) if text.strip() else {}


def table(rows: list[dict], columns: list[str], out=sys.stdout) -> None:
    cells = [[str(r.get(c, "")) if not isinstance(r.get(c), list) else ",".join(map(str, r[c])) for c in columns]
             for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def from_args(args) -> ApiClient:
    return ApiClient(args.api or os.environ.get("COFFER_API_URL", "http://127.0.0.1:8779"),
                     args.project or os.environ.get("COFFER_PROJECT", ""),
                     args.token or os.environ.get("COFFER_TOKEN", ""))
