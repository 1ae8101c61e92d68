"""Encryption at rest for secrets the API must hold briefly (create-request passwords)."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nacl.secret
import nacl.utils

from plumbing.config import coffer_home


def _key() -> bytes:
    configured = os.environ.get("COFFER_API_SECRET_KEY")
    if configured:
        return base64.b64decode(configured)
    path = coffer_home() / "api-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
    return Path(path).read_bytes()


class Vault:
    def __init__(self):
        self._box = nacl.secret.SecretBox(_key())

    def lock(self, payload: dict) -> str:
        return base64.b64encode(self._box.encrypt(json.dumps(payload).encode())).decode()

    def unlock(self, blob: str) -> dict:
        return json.loads(self._box.decrypt(base64.b64decode(blob)))
