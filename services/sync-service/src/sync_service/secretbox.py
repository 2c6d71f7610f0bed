"""Partners' secrets at rest: AES-GCM under a key from `SYNC_SECRET_KEYS` ("kid:base64key,...").

The first key encrypts new secrets; every listed key still decrypts what it encrypted, so a key can be
rotated by putting a new one first and re-registering (or rotating) the secrets. The stored form is
`kid:base64(nonce + ciphertext)`; the record's id is bound as associated data, so a ciphertext copied
onto another record does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SecretKeyError(ValueError):
    pass


def parse_keys(raw: str) -> dict[str, bytes]:
    """`kid:base64key,...` -> ordered {kid: key}; every key must be 16, 24 or 32 bytes."""
    keys: dict[str, bytes] = {}
    for part in raw.split(","):
        kid, sep, encoded = part.strip().partition(":")
        if not part.strip():
            continue
        if not sep or not kid:
            raise SecretKeyError("secret keys are written kid:base64key, separated by commas")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecretKeyError(f"secret key {kid!r} is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise SecretKeyError(f"secret key {kid!r} must be 16, 24 or 32 bytes")
        keys[kid] = key
    if not keys:
        raise SecretKeyError("at least one secret key is required")
    return keys


class SecretBox:
    def __init__(self, raw_keys: str) -> None:
        self._keys = parse_keys(raw_keys)
        self._current = next(iter(self._keys))

    def seal(self, secret: str, *, bound_to: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, secret.encode(), bound_to.encode())
        return f"{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, *, bound_to: str) -> str:
        kid, _, encoded = stored.partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise SecretKeyError(f"no secret key {kid!r} is configured to decrypt this secret")
        blob = base64.b64decode(encoded)
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], bound_to.encode()).decode()
