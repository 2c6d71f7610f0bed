"""Every kind of bad token is refused by the gateway, on its own routes and before proxying."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gateway_harness import RunningGateway
from jose import jwt

from gateway.testing import TokenForge, free_port

BadToken = Callable[[RunningGateway, str, str], Awaitable[str]]


async def _claims_of(gw: RunningGateway, client_id: str, **changes: Any) -> str:
    forge = TokenForge(gw.runtime)
    return await forge.signed(forge.claims(subject=client_id, scopes=["admin"], **changes))


async def _alg_none(gw: RunningGateway, client_id: str, _token: str) -> str:
    forge = gw.forge
    return await forge.alg_none(forge.claims(subject=client_id, scopes=["admin"]))


async def _hs256_public_key(gw: RunningGateway, client_id: str, _token: str) -> str:
    forge = gw.forge
    return await forge.hs256_with_public_key(forge.claims(subject=client_id, scopes=["admin"]))


async def _expired(gw: RunningGateway, client_id: str, _token: str) -> str:
    now = int(time.time())
    return await _claims_of(gw, client_id, iat=now - 3600, nbf=now - 3600, exp=now - 600)


async def _wrong_audience(gw: RunningGateway, client_id: str, _token: str) -> str:
    return await _claims_of(gw, client_id, aud="someone-else")


async def _wrong_issuer(gw: RunningGateway, client_id: str, _token: str) -> str:
    return await _claims_of(gw, client_id, iss="https://evil.example")


async def _unknown_kid(gw: RunningGateway, client_id: str, _token: str) -> str:
    forge = gw.forge
    return await forge.signed(
        forge.claims(subject=client_id, scopes=["admin"]), kid=f"nope-{uuid.uuid4().hex}"
    )


async def _tampered(gw: RunningGateway, _client_id: str, token: str) -> str:
    return TokenForge.tampered(token, scope="admin")


async def _disabled_client(gw: RunningGateway, client_id: str, token: str) -> str:
    response = await gw.http.post(f"/admin/clients/{client_id}/disable", headers=await gw.admin_headers())
    assert response.status_code == 200
    return token


BAD_TOKENS: dict[str, BadToken] = {
    "alg_none": _alg_none,
    "hs256_signed_with_rsa_public_key": _hs256_public_key,
    "expired": _expired,
    "wrong_audience": _wrong_audience,
    "wrong_issuer": _wrong_issuer,
    "unknown_kid": _unknown_kid,
    "tampered_payload": _tampered,
    "disabled_client": _disabled_client,
}


async def _valid_client_token(gw: RunningGateway) -> tuple[str, str]:
    client_id, secret = await gw.add_client("storefront")
    token = (await gw.client_token(client_id, secret)).json()["access_token"]
    return client_id, token


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_refused_on_a_gateway_route(gw: RunningGateway, kind: str) -> None:
    client_id, token = await _valid_client_token(gw)
    bad = await BAD_TOKENS[kind](gw, client_id, token)

    response = await gw.http.get("/v1/me", headers={"Authorization": f"Bearer {bad}"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_refused_before_proxying(start_gateway: Callable[..., object], kind: str) -> None:
    # The upstream port has no listener: a forwarded request would answer 502, a refused one 401.
    async with start_gateway(customer_url=f"http://127.0.0.1:{free_port()}") as gw:  # type: ignore[attr-defined]
        client_id, token = await _valid_client_token(gw)
        bad = await BAD_TOKENS[kind](gw, client_id, token)

        response = await gw.http.get("/api/customers/v1/whoami", headers={"Authorization": f"Bearer {bad}"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_no_token_is_refused_before_proxying(gw: RunningGateway) -> None:
    response = await gw.http.get("/api/customers/v1/whoami")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_without_the_admin_scope_gets_403_on_admin_routes(gw: RunningGateway) -> None:
    _, token = await _valid_client_token(gw)

    response = await gw.http.get("/admin/clients", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_valid_token_these_are_forged_from_is_accepted(gw: RunningGateway) -> None:
    _, token = await _valid_client_token(gw)

    response = await gw.http.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert jwt.get_unverified_claims(token)["sub"] == response.json()["subject"]
