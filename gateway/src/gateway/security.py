"""Hashing and encryption: argon2id for passwords, SHA-256 for high-entropy secrets, AES-GCM at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
PASSWORD_HASH = PasswordHash((Argon2Hasher(memory_cost=19456, time_cost=2, parallelism=1),))
# Verified when the account does not exist, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = PASSWORD_HASH.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(PASSWORD_HASH.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password against its hash (or a dummy hash when there is no account)."""
    ok = await asyncio.to_thread(PASSWORD_HASH.verify, password, password_hash or _DUMMY_HASH)
    return bool(ok) and password_hash is not None


def hash_secret(secret: str) -> str:
    """SHA-256 of a generated secret (client secrets, refresh tokens, recovery codes, session ids).

    These have 256 bits of entropy, so a fast hash is safe; a slow password hash would only cap
    the token endpoint's throughput.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), expected_hash)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class SecretBox:
    """AES-256-GCM with a key derived (HKDF-SHA256) from GATEWAY_KEY_ENCRYPTION_KEY."""

    def __init__(self, key_material: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ecom-gateway-at-rest").derive(
            key_material.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, *, context: str) -> str:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
