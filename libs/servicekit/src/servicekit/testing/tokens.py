"""Mint access tokens signed by a throwaway RSA key, for tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

DEFAULT_ISSUER = "http://127.0.0.1:8000"
DEFAULT_AUDIENCE = "ecom"


class TestTokenIssuer:
    """Holds a test RSA key pair; `mint()` returns RS256 access tokens a service accepts."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, *, issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE, kid: str | None = None
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid or f"test-{uuid.uuid4().hex[:8]}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.public_pem = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        # Built once: handing jose the PEM makes it parse and check the RSA key again on every token
        # (~50 ms each, thousands of tokens per suite); the signature is the same either way.
        self._signing_key = jwk.construct(self.private_pem, algorithm="RS256")

    @property
    def jwks(self) -> dict[str, Any]:
        public = jwk.construct(self.public_pem, algorithm="RS256").to_dict()
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def mint(
        self,
        *,
        subject: str = "test-user",
        scopes: list[str] | tuple[str, ...] = (),
        expires_in: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        payload.update(claims)
        header = {"kid": self.kid, "typ": "at+jwt"}
        header.update(headers or {})
        token: str = jwt.encode(payload, self._signing_key, algorithm="RS256", headers=header)
        return token

    def auth_header(self, *scopes: str, subject: str = "test-user") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(subject=subject, scopes=scopes)}"}
