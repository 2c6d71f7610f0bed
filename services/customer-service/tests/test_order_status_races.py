"""Concurrent status changes of one order: each pair of transitions raced N times leaves a timeline in
which every change follows from the one before, recorded once."""

import asyncio
import itertools

import httpx
import pytest
from customer_helpers import create_customer
from test_orders import WRITE, place

from customer_service.orders.service import TRANSITIONS
from servicekit.testing import TestTokenIssuer

EACH = 4  # concurrent requests of each status of a pair
SHIPPING = {"carrier": "DHL", "tracking_number": "JD0001"}

# (status the order is in, the two statuses raced)
RACES = [
    ("paid", "cancelled", "shipped"),
    ("paid", "cancelled", "refunded"),
    ("paid", "shipped", "refunded"),
    ("paid", "cancelled", "cancelled"),
    ("paid", "shipped", "shipped"),
    ("placed", "paid", "cancelled"),
]


async def _order_in(client: httpx.AsyncClient, tokens: TestTokenIssuer, status: str) -> str:
    customer = await create_customer(client, tokens)
    order_id = str((await place(client, tokens, customer_id=customer["id"])).json()["id"])
    if status == "paid":
        response = await client.post(
            f"/v1/orders/{order_id}/status", json={"status": "paid"}, headers=tokens.auth_header(*WRITE)
        )
        assert response.status_code == 200
    return order_id


@pytest.mark.parametrize(("start", "first", "second"), RACES, ids=[f"{s}:{a}+{b}" for s, a, b in RACES])
async def test_racing_status_changes_each_take_effect_once_and_in_order(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, start: str, first: str, second: str
) -> None:
    order_id = await _order_in(client, token_issuer, start)
    headers = token_issuer.auth_header(*WRITE)
    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/orders/{order_id}/status",
                json={"status": status, **(SHIPPING if status == "shipped" else {})},
                headers=headers,
            )
            for status in (first, second)
            for _ in range(EACH)
        )
    )

    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
    assert all(
        r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 409
    )
    order = (await client.get(f"/v1/orders/{order_id}", headers=headers)).json()
    timeline = order["timeline"]
    statuses = [entry["status"] for entry in timeline]
    assert len(set(statuses)) == len(statuses), statuses  # no change recorded twice
    for before, after in itertools.pairwise(timeline):
        assert after["previous_status"] == before["status"], timeline
        assert after["status"] in TRANSITIONS[before["status"]], timeline
    assert statuses[-1] == order["status"]
    assert order["version"] == len(timeline)
    assert set(statuses) - {"placed", start} <= {first, second}
    assert first in statuses or second in statuses
