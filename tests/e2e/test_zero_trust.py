"""A token minted by the real gateway is accepted by a service through the gateway's JWKS, and every
kind of bad token is refused both by the gateway and by the service called directly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
from e2e_stack import ADMIN_PASSWORD, Stack
from jose import jwt

from gateway.testing import TokenForge

WHOAMI = "/v1/whoami"

BadToken = Callable[[Stack, str, str], Awaitable[str]]


async def _signed(stack: Stack, client_id: str, **changes: object) -> str:
    forge = stack.forge
    claims = forge.claims(subject=client_id, scopes=["customers:read"])
    claims.update(changes)
    return await forge.signed(claims)


async def _alg_none(stack: Stack, client_id: str, _token: str) -> str:
    return await stack.forge.alg_none(stack.forge.claims(subject=client_id, scopes=["admin"]))


async def _hs256_public_key(stack: Stack, client_id: str, _token: str) -> str:
    return await stack.forge.hs256_with_public_key(stack.forge.claims(subject=client_id, scopes=["admin"]))


async def _expired(stack: Stack, client_id: str, _token: str) -> str:
    now = int(time.time())
    return await _signed(stack, client_id, iat=now - 3600, nbf=now - 3600, exp=now - 600)


async def _wrong_audience(stack: Stack, client_id: str, _token: str) -> str:
    return await _signed(stack, client_id, aud="another-api")


async def _wrong_issuer(stack: Stack, client_id: str, _token: str) -> str:
    return await _signed(stack, client_id, iss="https://issuer.example")


async def _unknown_kid(stack: Stack, client_id: str, _token: str) -> str:
    claims = stack.forge.claims(subject=client_id, scopes=["customers:read"])
    return await stack.forge.signed(claims, kid=f"unknown-{uuid.uuid4().hex}")


async def _tampered(stack: Stack, _client_id: str, token: str) -> str:
    return TokenForge.tampered(token, scope="admin customers:pii")


BAD_TOKENS: dict[str, BadToken] = {
    "alg_none": _alg_none,
    "hs256_signed_with_rsa_public_key": _hs256_public_key,
    "expired": _expired,
    "wrong_audience": _wrong_audience,
    "wrong_issuer": _wrong_issuer,
    "unknown_kid": _unknown_kid,
    "tampered_payload": _tampered,
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _client(stack: Stack, role: str = "storefront") -> tuple[str, str, dict[str, str]]:
    admin = await stack.admin_headers(f"admin-{uuid.uuid4().hex[:8]}@example.test")
    client_id, secret = await stack.new_client(admin, role)
    return client_id, await stack.client_token(client_id, secret), admin


async def test_a_gateway_token_is_accepted_by_the_service_directly(stack: Stack) -> None:
    client_id, token, _ = await _client(stack)

    response = await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(token))

    assert response.status_code == 200
    assert response.json()["subject"] == client_id


async def test_a_gateway_token_reaches_the_service_through_the_gateway(stack: Stack) -> None:
    client_id, token, _ = await _client(stack)

    response = await stack.http.get(f"{stack.gateway_url}/api/customers{WHOAMI}", headers=_bearer(token))

    assert response.status_code == 200
    assert response.json()["client_id"] == client_id


async def test_no_token_is_refused_by_the_service(stack: Stack) -> None:
    response = await stack.http.get(f"{stack.customer_url}{WHOAMI}")

    assert response.status_code == 401


async def test_no_token_is_refused_by_the_gateway(stack: Stack) -> None:
    response = await stack.http.get(f"{stack.gateway_url}/api/customers{WHOAMI}")

    assert response.status_code == 401


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_refused_by_the_service_called_directly(stack: Stack, kind: str) -> None:
    client_id, token, _ = await _client(stack)
    bad = await BAD_TOKENS[kind](stack, client_id, token)

    response = await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(bad))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_token_is_refused_by_the_gateway(stack: Stack, kind: str) -> None:
    client_id, token, _ = await _client(stack)
    bad = await BAD_TOKENS[kind](stack, client_id, token)

    response = await stack.http.get(f"{stack.gateway_url}/api/customers{WHOAMI}", headers=_bearer(bad))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_missing_the_scope_is_refused_by_the_service_directly(stack: Stack) -> None:
    _, token, _ = await _client(stack, "logistics")  # no customers:read

    response = await stack.http.get(f"{stack.customer_url}/v1/customers", headers=_bearer(token))

    assert response.status_code == 403


async def test_a_token_missing_the_scope_is_refused_through_the_gateway(stack: Stack) -> None:
    _, token, _ = await _client(stack, "logistics")

    response = await stack.http.get(f"{stack.gateway_url}/api/customers/v1/customers", headers=_bearer(token))

    assert response.status_code == 403


async def test_a_disabled_clients_token_is_refused_by_the_gateway(stack: Stack) -> None:
    client_id, token, admin = await _client(stack)

    await stack.http.post(f"{stack.gateway_url}/admin/clients/{client_id}/disable", headers=admin)
    response = await stack.http.get(f"{stack.gateway_url}/api/customers{WHOAMI}", headers=_bearer(token))

    assert response.status_code == 401


async def _status_until(stack: Stack, url: str, token: str, expected: int, *, timeout: float = 10.0) -> int:
    """Call `url` until it answers `expected` or `timeout` passes (a bound for the service's cache)."""
    deadline = time.monotonic() + timeout
    while True:
        status = (await stack.http.get(url, headers=_bearer(token))).status_code
        if status == expected or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


async def test_a_disabled_clients_token_is_refused_by_the_service_called_directly(stack: Stack) -> None:
    client_id, token, admin = await _client(stack)
    _, other_token, _ = await _client(stack)
    assert (await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(token))).status_code == 200

    disabled = await stack.http.post(f"{stack.gateway_url}/admin/clients/{client_id}/disable", headers=admin)

    assert disabled.status_code == 200
    assert await _status_until(stack, f"{stack.customer_url}{WHOAMI}", token, 401) == 401
    other = await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(other_token))
    assert other.status_code == 200  # only the disabled client's tokens are refused


async def test_a_revoked_access_token_is_refused_by_the_service_called_directly(stack: Stack) -> None:
    _, token, _ = await _client(stack)

    revoked = await stack.http.post(f"{stack.gateway_url}/oauth/revoke", data={"token": token})

    assert revoked.status_code == 200
    assert await _status_until(stack, f"{stack.customer_url}{WHOAMI}", token, 401) == 401


async def test_the_revocation_list_names_disabled_clients(stack: Stack) -> None:
    client_id, _, admin = await _client(stack)
    await stack.http.post(f"{stack.gateway_url}/admin/clients/{client_id}/disable", headers=admin)

    listed = (await stack.http.get(f"{stack.gateway_url}/.well-known/revocations.json")).json()

    assert client_id in listed["subjects"]


async def test_tokens_of_a_rotated_out_key_still_verify_at_the_service(stack: Stack) -> None:
    _, old_token, admin = await _client(stack)

    rotated = await stack.http.post(f"{stack.gateway_url}/admin/keys/rotate", headers=admin)
    _, new_token, _ = await _client(stack)
    old = await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(old_token))
    new = await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=_bearer(new_token))

    assert jwt.get_unverified_header(new_token)["kid"] == rotated.json()["kid"]
    assert (old.status_code, new.status_code) == (200, 200)


async def test_a_disabled_persons_token_is_refused_by_the_service_called_directly(stack: Stack) -> None:
    admin = await stack.admin_headers(f"admin-{uuid.uuid4().hex[:8]}@example.test")
    email = f"person-{uuid.uuid4().hex[:8]}@example.test"
    person_headers = await stack.admin_headers(email)
    token = person_headers["Authorization"].removeprefix("Bearer ")
    user_id = jwt.get_unverified_claims(token)["sub"]
    assert (await stack.http.get(f"{stack.customer_url}{WHOAMI}", headers=person_headers)).status_code == 200

    disabled = await stack.http.post(f"{stack.gateway_url}/admin/users/{user_id}/disable", headers=admin)

    assert disabled.status_code == 200
    assert await _status_until(stack, f"{stack.customer_url}{WHOAMI}", token, 401) == 401
    assert (await stack.http.get(f"{stack.gateway_url}/v1/me", headers=person_headers)).status_code == 401


async def test_a_refresh_token_reuse_ends_the_familys_access_token_at_the_service(stack: Stack) -> None:
    email = f"person-{uuid.uuid4().hex[:8]}@example.test"
    await stack.admin_headers(email)
    login = (
        await stack.http.post(
            f"{stack.gateway_url}/oauth/token",
            data={"grant_type": "password", "username": email, "password": ADMIN_PASSWORD},
        )
    ).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}
    rotated = (await stack.http.post(f"{stack.gateway_url}/oauth/token", data=refresh)).json()

    reuse = await stack.http.post(f"{stack.gateway_url}/oauth/token", data=refresh)

    assert reuse.status_code == 400
    for token in (login["access_token"], rotated["access_token"]):
        assert await _status_until(stack, f"{stack.customer_url}{WHOAMI}", token, 401) == 401
