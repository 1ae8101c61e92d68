"""Backup keys: each backup is encrypted under its own random data key; the data key
is kept only wrapped (AES-GCM) by the deployment's master key, bound to the backup's
id so a wrapped key cannot be moved to another backup.

The master key comes from COFFER_BACKUP_MASTER_KEY (32 bytes, base64); the embedded
default is generated once and kept in <COFFER_HOME>/backup-master.key (mode 0600)."""
from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import coffer_home

KEY_BYTES = 32
NONCE_BYTES = 12


class WrappedKeyError(Exception):
    """A wrapped key that the master key cannot open (another master key, or tampered)."""


def _decode(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError(f"{what} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes, base64-encoded")
    return key


def master_key() -> bytes:
    configured = os.environ.get("COFFER_BACKUP_MASTER_KEY")
    if configured:
        return _decode(configured, "COFFER_BACKUP_MASTER_KEY")
    path = coffer_home() / "backup-master.key"
    return _decode(_read_or_create(path), str(path))


def _read_or_create(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another service made it meanwhile
        return path.read_text()
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(os.urandom(KEY_BYTES)).decode())
    return path.read_text()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap(master: bytes, data_key: bytes, backup_id: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(master).encrypt(nonce, data_key, backup_id.encode())).decode()


def unwrap(master: bytes, wrapped: str, backup_id: str) -> bytes:
    raw = base64.b64decode(wrapped)
    try:
        return AESGCM(master).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], backup_id.encode())
    except InvalidTag:
        raise WrappedKeyError(f"the data key of backup {backup_id} does not open with this master key") from None
