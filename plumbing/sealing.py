"""Secrets sealed to an agent's public key (libsodium sealed boxes): only the
agent holding the private key can open them; the bus and logs see ciphertext."""
from __future__ import annotations

import base64
import json

from nacl.public import PrivateKey, PublicKey, SealedBox


def new_private_key() -> PrivateKey:
    return PrivateKey.generate()


def public_key_b64(key: PrivateKey) -> str:
    return base64.b64encode(bytes(key.public_key)).decode()


def seal(public_key_b64_: str, payload: dict) -> str:
    box = SealedBox(PublicKey(base64.b64decode(public_key_b64_)))
    return base64.b64encode(box.encrypt(json.dumps(payload).encode())).decode()


def open_sealed(key: PrivateKey, sealed: str) -> dict:
    return json.loads(SealedBox(key).decrypt(base64.b64decode(sealed)))
