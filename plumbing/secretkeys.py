"""Symmetric keys from configuration: base64 in an environment variable, or else a
random key made once in a file under COFFER_HOME (mode 0600), which every process
sharing the state directory then reads."""
from __future__ import annotations

import base64
import os

import nacl.secret
import nacl.utils

from .config import coffer_home


def secret_box(env_name: str, file_name: str) -> nacl.secret.SecretBox:
    configured = os.environ.get(env_name)
    if configured:
        return nacl.secret.SecretBox(base64.b64decode(configured))
    path = coffer_home() / file_name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
        except FileExistsError:
            pass  # another process made it first
    return nacl.secret.SecretBox(path.read_bytes())
