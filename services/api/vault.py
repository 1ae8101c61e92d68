"""Encryption at rest for secrets the API must hold briefly (create-request passwords)."""
from __future__ import annotations

import base64
import json

from plumbing.secretkeys import secret_box


class Vault:
    def __init__(self):
        self._box = secret_box("COFFER_API_SECRET_KEY", "api-secret.key")

    def lock(self, payload: dict) -> str:
        return base64.b64encode(self._box.encrypt(json.dumps(payload).encode())).decode()

    def unlock(self, blob: str) -> dict:
        return json.loads(self._box.decrypt(base64.b64decode(blob)))
