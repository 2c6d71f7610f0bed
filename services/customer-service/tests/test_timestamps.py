"""Every date-time customer-service answers carries an offset, on create and on a later read."""

from datetime import datetime
from typing import Any

import httpx
from customer_helpers import create_customer, new_email, run_import, unique

from servicekit.testing import TestTokenIssuer

HEADERS = ("customers:read", "customers:write", "orders:write")


def _date_times(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, value) of every string in `node` that parses as an ISO 8601 date-time."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _date_times(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _date_times(value, f"{path}[{index}]")
    elif isinstance(node, str) and len(node) >= 19 and node[4:5] == "-" and node[10:11] == "T":
        try:
            datetime.fromisoformat(node)
        except ValueError:
            return found
        found.append((path, node))
    return found


def _assert_offsets(body: Any) -> int:
    moments = _date_times(body)
    naive = [(path, value) for path, value in moments if datetime.fromisoformat(value).utcoffset() is None]
    assert naive == [], naive
    return len(moments)


async def test_customer_order_flag_and_import_times_have_offsets(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    headers = token_issuer.auth_header(*HEADERS)
    customer = await create_customer(client, token_issuer)
    order = await client.post(
        "/v1/orders",
        json={
            "order_number": f"T-{unique()}",
            "customer_id": customer["id"],
            "channel": "web",
            "currency": "EUR",
            "billing_country": "FR",
            "shipping_country": "DE",
            "lines": [{"sku": "A", "quantity": 1, "unit_price": "20", "currency": "EUR"}],
        },
        headers=headers,
    )
    assert order.status_code == 201, order.text
    job = await run_import(
        client, token_issuer, f"first_name,email\nAna,{new_email()}\n".encode(), "customers.csv"
    )
    reads = [
        customer,
        order.json(),
        job,
        (await client.get(f"/v1/customers/{customer['id']}", headers=headers)).json(),
        (await client.get(f"/v1/orders/{order.json()['id']}", headers=headers)).json(),
        (await client.get("/v1/risk/flags", params={"customer_id": customer["id"]}, headers=headers)).json(),
        (await client.get(f"/v1/imports/{job['id']}", headers=headers)).json(),
    ]
    assert sum(_assert_offsets(body) for body in reads) >= 8
