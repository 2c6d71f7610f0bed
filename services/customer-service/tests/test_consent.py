"""The consent ledger through the HTTP API."""

from typing import Any

import httpx
from customer_helpers import create_customer, events_about, unique

from contracts import topics
from servicekit.testing import TestTokenIssuer


async def _consent(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, customer_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{customer_id}/consents",
        json={"source": "checkout", **body},
        headers=tokens.auth_header("customers:write"),
    )


async def test_ledger_keeps_every_decision_and_profile_shows_the_latest(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    await _consent(client, token_issuer, customer["id"], purpose="email_marketing", status="granted")
    await _consent(
        client,
        token_issuer,
        customer["id"],
        purpose="email_marketing",
        status="withdrawn",
        source="unsubscribe",
    )

    overview = (
        await client.get(
            f"/v1/customers/{customer['id']}/consents", headers=token_issuer.auth_header("customers:read")
        )
    ).json()
    profile = (
        await client.get(
            f"/v1/customers/{customer['id']}", headers=token_issuer.auth_header("customers:read")
        )
    ).json()

    assert [(e["status"], e["source"]) for e in overview["ledger"]] == [
        ("granted", "checkout"),
        ("withdrawn", "unsubscribe"),
    ]
    assert profile["consents"]["email_marketing"]["status"] == "withdrawn"
    assert profile["consents"]["email_marketing"]["lawful_basis"] == "consent"


async def test_a_backdated_record_joins_the_ledger_without_replacing_a_later_decision(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    """A withdrawal recorded_at 1999, sent after a grant of today, became the current state: the
    customer read as withdrawn since 1999. The later decision stays current; the ledger keeps both."""
    customer = await create_customer(client, token_issuer)
    await _consent(client, token_issuer, customer["id"], purpose="sms", status="granted")

    late = await _consent(
        client,
        token_issuer,
        customer["id"],
        purpose="sms",
        status="withdrawn",
        recorded_at="1999-01-01T00:00:00Z",
        source="paper-form",
    )

    assert late.status_code == 201
    overview = (
        await client.get(
            f"/v1/customers/{customer['id']}/consents", headers=token_issuer.auth_header("customers:read")
        )
    ).json()
    assert overview["current"]["sms"]["status"] == "granted"
    assert [entry["status"] for entry in overview["ledger"]] == ["granted", "withdrawn"]
    listed = await client.get(
        "/v1/customers",
        params={"consent": "sms:withdrawn", "limit": 500},
        headers=token_issuer.auth_header("customers:read"),
    )
    assert customer["id"] not in [c["id"] for c in listed.json()["items"]]


async def test_unknown_purpose_gets_422(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    customer = await create_customer(client, token_issuer)

    response = await _consent(client, token_issuer, customer["id"], purpose="telepathy", status="granted")

    assert response.status_code == 422


async def test_consent_change_emits_an_event(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    customer = await create_customer(client, token_issuer)
    await _consent(
        client, token_issuer, customer["id"], purpose="sms", status="granted", lawful_basis="consent"
    )

    events = await events_about(
        kafka_bootstrap, topics.CUSTOMERS, customer["id"], ["ecom.customer.consent_changed.v1"]
    )

    (event,) = [e for e in events if e.type == "ecom.customer.consent_changed.v1"]
    assert (event.data["purpose"], event.data["status"], event.data["previous_status"]) == (
        "sms",
        "granted",
        None,
    )


async def test_list_filters_by_consent_state(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    tag = f"consent-{unique()}"
    granted = await create_customer(client, token_issuer, tags=[tag])
    silent = await create_customer(client, token_issuer, tags=[tag])
    await _consent(client, token_issuer, granted["id"], purpose="analytics", status="granted")
    headers = token_issuer.auth_header("customers:read")

    with_consent = await client.get(
        "/v1/customers", params={"tag": tag, "consent": "analytics:granted"}, headers=headers
    )
    without = await client.get(
        "/v1/customers", params={"tag": tag, "consent": "analytics:none"}, headers=headers
    )

    assert [c["id"] for c in with_consent.json()["items"]] == [granted["id"]]
    assert [c["id"] for c in without.json()["items"]] == [silent["id"]]


async def test_recorded_consent_raises_the_quality_score(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    customer = await create_customer(client, token_issuer)
    await _consent(client, token_issuer, customer["id"], purpose="personalisation", status="granted")

    profile = (
        await client.get(
            f"/v1/customers/{customer['id']}", headers=token_issuer.auth_header("customers:read")
        )
    ).json()

    assert profile["quality"]["consent_recorded"] is True
    assert profile["quality_score"] > customer["quality_score"]
