"""A service refuses every token it cannot trust, checks scopes, and follows the gateway's key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Security

from servicekit.app import create_service_app
from servicekit.auth import Caller, JWKSClient, RevocationList, StaticKeys, TokenVerifier, require
from servicekit.broker import free_port
from servicekit.errors import Unauthorized, problem_responses
from servicekit.settings import ServiceSettings
from servicekit.testing import TestTokenIssuer, running_app

JWKS_URL = "http://gateway.test/.well-known/jwks.json"

router = APIRouter(prefix="/v1")


@router.get("/customers", responses=problem_responses(401, 403))
async def list_customers(
    caller: Annotated[Caller, Security(require, scopes=["customers:read"])],
) -> dict[str, str]:
    """A route only callers holding customers:read may use."""
    return {"subject": caller.subject}


@pytest.fixture
async def client(tmp_path: Path, token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        service_name="auth-test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        kafka_enabled=False,
        log_json=False,
    )
    app = create_service_app(settings, title="auth test", routers=[router])
    async with running_app(app, token_issuer) as client:
        yield client


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def valid_claims(issuer: TestTokenIssuer, *scopes: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "mallory",
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_request_without_token_gets_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/customers")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unsigned_alg_none_token_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": token_issuer.kid}
    token = f"{b64url_json(header)}.{b64url_json(valid_claims(token_issuer, 'customers:read'))}."
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)


async def test_hs256_token_keyed_with_the_public_key_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    # The algorithm-confusion attack: HMAC "signed" with the RSA public key, which anyone can fetch.
    header = {"alg": "HS256", "typ": "JWT", "kid": token_issuer.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(valid_claims(token_issuer, 'customers:read'))}"
    signature = hmac.new(token_issuer.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    response = await client.get("/v1/customers", headers=bearer(f"{signing_input}.{b64url(signature)}"))
    assert_problem(response, 401)


async def test_expired_token_gets_401(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    token = token_issuer.mint(scopes=["customers:read"], expires_in=-600)
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)
    assert "expired" in response.json()["detail"]


async def test_token_for_another_audience_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint(scopes=["customers:read"], aud="some-other-system")
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)


async def test_token_from_another_issuer_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint(scopes=["customers:read"], iss="https://evil.example")
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)


async def test_token_with_unknown_key_id_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint(scopes=["customers:read"], headers={"kid": "no-such-key"})
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)


async def test_token_with_tampered_claims_gets_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    header, payload, signature = token_issuer.mint(scopes=["customers:read"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "customers:read admin"
    response = await client.get(
        "/v1/customers", headers=bearer(f"{header}.{b64url_json(claims)}.{signature}")
    )
    assert_problem(response, 401)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.", "...."])
async def test_garbage_token_gets_401(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/v1/customers", headers=bearer(token))
    assert_problem(response, 401)


async def test_valid_token_without_the_scope_gets_403(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/v1/customers", headers=token_issuer.auth_header("customers:write"))
    assert_problem(response, 403)
    assert "customers:read" in response.json()["detail"]


async def test_valid_token_with_the_scope_gets_200(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get(
        "/v1/customers", headers=token_issuer.auth_header("customers:read", subject="alice")
    )
    assert response.status_code == 200
    assert response.json() == {"subject": "alice"}


async def test_admin_scope_passes_any_scope_check(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.get("/v1/customers", headers=token_issuer.auth_header("admin"))
    assert response.status_code == 200


GATEWAY = TestTokenIssuer()


class JWKSServer:
    """A real ASGI app serving a JWKS that can grow (key rotation) and counts how often it is fetched."""

    def __init__(self, *issuers: TestTokenIssuer) -> None:
        self.keys: list[dict[str, Any]] = [key for issuer in issuers for key in issuer.jwks["keys"]]
        self.fetches = 0
        self.app = FastAPI()

        @self.app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            self.fetches += 1
            return {"keys": list(self.keys)}

    def publish(self, issuer: TestTokenIssuer) -> None:
        self.keys.extend(issuer.jwks["keys"])

    def verifier(self, **jwks_options: float) -> TokenVerifier:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
        keys = JWKSClient(JWKS_URL, client=http, **jwks_options)
        return TokenVerifier(keys, issuer=GATEWAY.issuer, audience=GATEWAY.audience)


async def test_jwks_keys_are_cached_between_tokens() -> None:
    server = JWKSServer(GATEWAY)
    verifier = server.verifier()
    for subject in ("a", "b", "c"):
        caller = await verifier.verify(GATEWAY.mint(subject=subject))
        assert caller.subject == subject
    assert server.fetches == 1


async def test_key_added_to_the_jwks_later_becomes_usable() -> None:
    rotated = TestTokenIssuer()
    server = JWKSServer(GATEWAY)
    verifier = server.verifier(min_refetch_interval=0)
    await verifier.verify(GATEWAY.mint())

    server.publish(rotated)
    caller = await verifier.verify(rotated.mint(subject="after-rotation"))

    assert caller.subject == "after-rotation"
    assert server.fetches == 2


async def test_unknown_key_ids_refetch_the_jwks_at_most_once_per_interval() -> None:
    stranger = TestTokenIssuer()  # its key is never published
    rotated = TestTokenIssuer()
    server = JWKSServer(GATEWAY)
    verifier = server.verifier(min_refetch_interval=3600)
    await verifier.verify(GATEWAY.mint())

    for _ in range(5):
        with pytest.raises(Unauthorized):
            await verifier.verify(stranger.mint())
    server.publish(rotated)
    with pytest.raises(Unauthorized):
        await verifier.verify(rotated.mint())  # within the interval of the strangers' refetch

    assert server.fetches == 2  # the first, and one for the unknown kids


async def test_a_key_rotated_in_just_after_a_fetch_verifies_its_first_token() -> None:
    """The JWKS fetched at a service's start (or by the cache) does not hold back a key the gateway
    rotates in a moment later: the interval between refetches counts from the last unknown kid's."""
    rotated = TestTokenIssuer()
    server = JWKSServer(GATEWAY)
    verifier = server.verifier(min_refetch_interval=3600)
    await verifier.warm()
    await verifier.verify(GATEWAY.mint())

    server.publish(rotated)
    caller = await verifier.verify(rotated.mint(subject="after-rotation"))

    assert caller.subject == "after-rotation"
    assert server.fetches == 2


class StaticRevocations(RevocationList):
    """The gateway's revocation list as this test sets it (no HTTP)."""

    def __init__(self) -> None:
        super().__init__("http://gateway.test/.well-known/revocations.json", cache_seconds=0)
        self.token_ids: set[str] = set()

    async def _refresh(self) -> None:
        self._token_ids = frozenset(self.token_ids)


async def test_a_token_verified_before_is_refused_once_its_key_leaves_the_jwks() -> None:
    server = JWKSServer(GATEWAY)
    verifier = server.verifier(cache_seconds=0)
    token = GATEWAY.mint()
    await verifier.verify(token)

    server.keys.clear()

    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(token)


async def test_a_token_verified_before_is_refused_once_revoked() -> None:
    revocations = StaticRevocations()
    verifier = TokenVerifier(
        StaticKeys(GATEWAY.jwks), issuer=GATEWAY.issuer, audience=GATEWAY.audience, revocations=revocations
    )
    token = GATEWAY.mint(jti="token-1")
    await verifier.verify(token)

    revocations.token_ids.add("token-1")

    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(token)


async def test_a_token_verified_before_is_refused_once_expired() -> None:
    verifier = TokenVerifier(
        StaticKeys(GATEWAY.jwks), issuer=GATEWAY.issuer, audience=GATEWAY.audience, leeway=0
    )
    token = GATEWAY.mint(expires_in=1)
    await verifier.verify(token)

    await asyncio.sleep(2.1)

    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


class _RevocationsHandler(http.server.BaseHTTPRequestHandler):
    """The gateway's revocation list, as a real HTTP server answers it; counts the connections."""

    connections = 0
    protocol_version = "HTTP/1.1"  # keeps the connection open, as uvicorn does

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:
        body = json.dumps({"subjects": ["disabled-user"], "token_ids": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        pass


async def test_the_revocation_list_keeps_one_http_client_and_closes_it() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _RevocationsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/revocations.json"
        revocations = RevocationList(url, cache_seconds=0)  # fetched on every check
        assert await revocations.is_revoked("disabled-user", None)
        client = revocations._client
        assert not await revocations.is_revoked("someone", None)
        assert await revocations.is_revoked("disabled-user", None)

        assert revocations._client is client  # not a new client (and TLS context) per fetch
        assert _RevocationsHandler.connections == 1  # and its pooled connection was reused
        await revocations.aclose()
        assert client is not None
        assert client.is_closed
    finally:
        server.shutdown()
        server.server_close()


async def test_warming_fetches_the_keys_and_the_revocations_before_the_first_token() -> None:
    """An app's start warms its verifier: the first request no longer makes the HTTP clients (their TLS
    context) and fetches the JWKS and the revocation list on its path."""
    server = JWKSServer(GATEWAY)
    revocation_server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _RevocationsHandler)
    thread = threading.Thread(target=revocation_server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{revocation_server.server_address[1]}/.well-known/revocations.json"
        revocations = RevocationList(url, cache_seconds=3600)
        verifier = server.verifier()
        verifier.revocations = revocations

        await verifier.warm()

        assert server.fetches == 1
        assert revocations._client is not None
        client = revocations._client
        assert await revocations.is_revoked("disabled-user", None)  # the warmed list, no fetch on the path
        caller = await verifier.verify(GATEWAY.mint(subject="first"))
        assert caller.subject == "first"
        assert server.fetches == 1
        assert revocations._client is client
        await verifier.aclose()
    finally:
        revocation_server.shutdown()
        revocation_server.server_close()


async def test_warming_while_the_gateway_is_down_is_quiet_and_the_first_token_fetches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service may start before the gateway: warming then fetches nothing, says nothing, and the first
    token fetches the keys and the list as before."""
    down = f"http://127.0.0.1:{free_port()}"
    keys = JWKSClient(down + "/.well-known/jwks.json", timeout=0.5)
    revocations = RevocationList(down + "/.well-known/revocations.json", timeout=0.5)
    verifier = TokenVerifier(keys, issuer=GATEWAY.issuer, audience=GATEWAY.audience, revocations=revocations)

    with caplog.at_level(logging.WARNING):
        await verifier.warm()

    assert keys._keys == {}
    assert caplog.records == []
    with pytest.raises(Unauthorized):
        await verifier.verify(GATEWAY.mint())  # the keys are fetched again, and still cannot be
    await verifier.aclose()
