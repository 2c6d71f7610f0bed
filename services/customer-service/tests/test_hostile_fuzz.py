"""A bounded, seeded fuzz of every operation with hostile values: no answer may be a 5xx."""

from typing import Any

import httpx
from customer_helpers import ALL_SCOPES, create_customer, new_email, unique

from servicekit.testing import TestTokenIssuer
from servicekit.testing.hostile import hostile_requests


async def test_no_hostile_value_gets_a_5xx(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    customer = await create_customer(client, token_issuer, emails=[{"address": new_email()}])
    cid = customer["id"]
    bases: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("POST", "/v1/customers"): (
            "/v1/customers",
            {
                "first_name": "Ann",
                "emails": [{"address": new_email()}],
                "addresses": [{"kind": "shipping", "line1": "1 A St", "city": "Paris", "country": "FR"}],
            },
        ),
        ("PATCH", "/v1/customers/{customer_id}"): (f"/v1/customers/{cid}", {"first_name": "Bo"}),
        ("POST", "/v1/customers/{customer_id}/consents"): (
            f"/v1/customers/{cid}/consents",
            {"purpose": "email_marketing", "status": "granted", "source": "checkout"},
        ),
        ("POST", "/v1/orders"): (
            "/v1/orders",
            {
                "order_number": unique(),
                "customer_id": cid,
                "channel": "web",
                "currency": "EUR",
                "lines": [{"sku": "S-1", "quantity": 1, "unit_price": "1.00", "currency": "EUR"}],
            },
        ),
        ("POST", "/v1/customers/identify"): ("/v1/customers/identify", {"email": new_email()}),
    }
    document = (await client.get("/openapi.json")).json()
    headers = token_issuer.auth_header(*ALL_SCOPES, "admin")
    failures = []
    count = 0
    statuses: dict[int, int] = {}
    for request in hostile_requests(document, bases=bases):
        count += 1
        response = await client.request(
            request.method,
            request.path,
            params=request.params,
            content=request.content,
            headers={**headers, **request.headers},
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append((request.method, request.path, request.params, (request.content or b"")[:200]))

    assert count > 300
    assert failures == []
