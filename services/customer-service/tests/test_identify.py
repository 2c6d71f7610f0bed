"""POST /v1/customers/identify: match by any identifier or create, idempotent, safe under concurrency."""

import asyncio

import httpx
from customer_helpers import create_customer, errors_of, new_email, new_phone, unique

from servicekit.testing import TestTokenIssuer


def _headers(tokens: TestTokenIssuer, key: str | None = None) -> dict[str, str]:
    headers = tokens.auth_header("customers:write", "customers:read")
    if key:
        headers["Idempotency-Key"] = key
    return headers


async def test_unknown_email_creates_a_customer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers/identify",
        json={"email": new_email(), "first_name": "Grace"},
        headers=_headers(token_issuer),
    )

    assert response.status_code == 201
    assert response.json()["created"] is True
    assert response.json()["customer"]["first_name"] == "Grace"


async def test_known_email_returns_the_same_customer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    first = await client.post("/v1/customers/identify", json={"email": email}, headers=_headers(token_issuer))

    second = await client.post(
        "/v1/customers/identify", json={"email": f"  {email.upper()}"}, headers=_headers(token_issuer)
    )

    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["customer"]["id"] == first.json()["customer"]["id"]


async def test_identify_matches_by_phone(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    phone = new_phone()
    created = await create_customer(client, token_issuer, phones=[{"number": phone}])

    response = await client.post(
        "/v1/customers/identify", json={"phone": phone}, headers=_headers(token_issuer)
    )

    assert response.json()["customer"]["id"] == created["id"]


async def test_identify_matches_by_external_id_before_email(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    loyalty = {"source": "pos", "id": f"LOY-{unique()}"}
    member = await create_customer(client, token_issuer, external_ids=[loyalty])
    other = await create_customer(client, token_issuer, emails=[{"address": new_email()}])

    response = await client.post(
        "/v1/customers/identify",
        json={"external_id": loyalty, "email": other["emails"][0]["address"]},
        headers=_headers(token_issuer),
    )

    assert response.json()["customer"]["id"] == member["id"]
    assert response.json()["customer"]["external_ids"] == [loyalty]


async def test_identify_without_identifiers_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers/identify", json={"first_name": "X"}, headers=_headers(token_issuer)
    )

    assert response.status_code == 422
    assert "body" in errors_of(response)


async def test_identify_with_invalid_phone_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    response = await client.post(
        "/v1/customers/identify", json={"phone": "abc"}, headers=_headers(token_issuer)
    )

    assert response.status_code == 422
    assert "body.phone" in errors_of(response)


async def test_repeat_with_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    key, body = unique(), {"email": new_email()}
    first = await client.post("/v1/customers/identify", json=body, headers=_headers(token_issuer, key))

    again = await client.post("/v1/customers/identify", json=body, headers=_headers(token_issuer, key))

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_same_idempotency_key_with_another_body_gets_422(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    key = unique()
    await client.post(
        "/v1/customers/identify", json={"email": new_email()}, headers=_headers(token_issuer, key)
    )

    response = await client.post(
        "/v1/customers/identify", json={"email": new_email()}, headers=_headers(token_issuer, key)
    )

    assert response.status_code == 422


async def test_concurrent_identify_with_one_email_creates_one_customer(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    email = new_email()
    headers = _headers(token_issuer)

    responses = await asyncio.gather(
        *(client.post("/v1/customers/identify", json={"email": email}, headers=headers) for _ in range(20))
    )

    assert {r.status_code for r in responses} <= {200, 201}
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert len({r.json()["customer"]["id"] for r in responses}) == 1
    search = await client.get("/v1/customers", params={"email": email}, headers=headers)
    assert len(search.json()["items"]) == 1
