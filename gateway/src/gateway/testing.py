"""Helpers for tests of the gateway and of services behind it: forged tokens and a real local server."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import uvicorn
from cryptography.hazmat.primitives import hashes, hmac
from jose import jwk, jwt
from starlette.types import ASGIApp

from gateway.keys import ALGORITHM
from gateway.runtime import Gateway
from servicekit.broker import free_port as free_port  # re-exported for the tests


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


class TokenForge:
    """Tokens a real gateway would (or would never) issue, for refusal tests."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def claims(
        self, *, subject: str, scopes: list[str], client_id: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        settings = self.gateway.settings
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "sub": subject,
            "client_id": client_id or subject,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return claims

    async def signed(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """Signed with the gateway's real active key (so only the claims can be wrong)."""
        key = await self.gateway.keyring.signing_key()
        token: str = jwt.encode(
            claims, key.signer, algorithm=ALGORITHM, headers={"kid": kid or key.kid, "typ": "at+jwt"}
        )
        return token

    async def alg_none(self, claims: dict[str, Any]) -> str:
        key = await self.gateway.keyring.signing_key()
        return f"{_segment({'alg': 'none', 'kid': key.kid, 'typ': 'at+jwt'})}.{_segment(claims)}."

    async def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """The classic key-confusion attack: HMAC keyed with the RSA public key's PEM."""
        key = await self.gateway.keyring.signing_key()
        public = await self.gateway.keyring.get(key.kid)
        assert public is not None
        pem = jwk.construct(public, algorithm=ALGORITHM).public_key().to_pem()
        signing_input = f"{_segment({'alg': 'HS256', 'kid': key.kid, 'typ': 'at+jwt'})}.{_segment(claims)}"
        mac = hmac.HMAC(pem, hashes.SHA256())
        mac.update(signing_input.encode())
        return f"{signing_input}.{_b64(mac.finalize())}"

    @staticmethod
    def tampered(token: str, **changes: Any) -> str:
        """The same signature over a changed payload."""
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims.update(changes)
        return f"{header}.{_segment(claims)}.{signature}"


@asynccontextmanager
async def serving(
    app: ASGIApp,
    *,
    port: int | None = None,
    lifespan: Literal["auto", "on", "off"] = "on",
    timeout_keep_alive: int = 5,
) -> AsyncIterator[str]:
    """Run `app` on a real 127.0.0.1 port with uvicorn in this event loop; yields its base URL. Without a
    `port` the socket is bound here and handed to uvicorn, so nothing can take the port in between."""
    sockets = None
    if port is None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])
        sockets = [listener]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        access_log=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=timeout_keep_alive,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {port}")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 20)
        finally:
            for listener in sockets or ():
                listener.close()
