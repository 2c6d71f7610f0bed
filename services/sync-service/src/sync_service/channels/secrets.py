"""Channels' signing secrets: Standard Webhooks secrets (`whsec_` + base64 of 32 random bytes), kept
encrypted at rest with AES-GCM under a key derived from `SYNC_SECRETS_KEY`, the channel id as
associated data (a ciphertext moved to another channel's row does not decrypt)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX = "whsec_"
NONCE_BYTES = 12


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _cipher(key: str) -> AESGCM:
    return AESGCM(hashlib.sha256(key.encode()).digest())


def seal(secret: str, *, key: str, channel_id: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, secret.encode(), channel_id.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(ciphertext: str, *, key: str, channel_id: str) -> str:
    raw = base64.b64decode(ciphertext)
    return _cipher(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], channel_id.encode()).decode()
