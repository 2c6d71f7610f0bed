"""Prices through the HTTP API: history, price at a date, scheduled changes, Omnibus lowest, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from product_support import create_product, unique, wait_for_events

from contracts.topics import PRICES
from servicekit.testing import TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _sku(client: httpx.AsyncClient, tokens: TestTokenIssuer) -> str:
    sku = unique("SKU-")
    await create_product(client, tokens, skus=[sku])
    return sku


async def _set(client: httpx.AsyncClient, tokens: TestTokenIssuer, sku: str, **body: Any) -> httpx.Response:
    body.setdefault("currency", "EUR")
    if isinstance(body.get("effective_from"), datetime):
        body["effective_from"] = _iso(body["effective_from"])
    return await client.post(f"/v1/prices/{sku}", json=body, headers=tokens.auth_header("products:write"))


async def _get(
    client: httpx.AsyncClient, tokens: TestTokenIssuer, path: str, **params: Any
) -> httpx.Response:
    params.setdefault("currency", "EUR")
    params = {k: _iso(v) if isinstance(v, datetime) else v for k, v in params.items()}
    return await client.get(path, params=params, headers=tokens.auth_header("products:read"))


async def test_current_price_includes_cost_and_margin(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    created = await _set(client, token_issuer, sku, amount="20.00", cost="15.00", reason="launch")
    assert created.status_code == 201, created.text
    body = (await _get(client, token_issuer, f"/v1/prices/{sku}")).json()
    assert (body["amount"], body["cost"], body["margin"]) == ("20.00", "15.00", "0.2500")
    assert (body["actor"], body["reason"], body["source"]) == ("test-user", "launch", "api")


async def test_scheduled_price_takes_effect_at_its_time(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    now = datetime.now(UTC)
    await _set(client, token_issuer, sku, amount="10.00")
    await _set(client, token_issuer, sku, amount="8.00", effective_from=now + timedelta(days=2))
    current = (await _get(client, token_issuer, f"/v1/prices/{sku}")).json()
    later = (await _get(client, token_issuer, f"/v1/prices/{sku}", at=now + timedelta(days=3))).json()
    assert current["amount"] == "10.00"
    assert later["amount"] == "8.00"


async def test_price_at_a_date_before_any_price_is_404(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    await _set(client, token_issuer, sku, amount="10.00")
    response = await _get(client, token_issuer, f"/v1/prices/{sku}", at=datetime.now(UTC) - timedelta(days=1))
    assert response.status_code == 404


async def test_backdated_price_is_refused(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    sku = await _sku(client, token_issuer)
    response = await _set(
        client, token_issuer, sku, amount="10.00", effective_from=datetime.now(UTC) - timedelta(days=1)
    )
    assert response.status_code == 422


async def test_more_than_two_decimals_is_refused(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    assert (await _set(client, token_issuer, sku, amount="1.999")).status_code == 422


async def test_price_for_unknown_sku_is_404(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    assert (await _set(client, token_issuer, "NO-SUCH-SKU", amount="1.00")).status_code == 404


async def test_channel_price_overrides_the_general_price(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    await _set(client, token_issuer, sku, amount="10.00")
    await _set(client, token_issuer, sku, amount="11.00", channel="marketplace")
    web = (await _get(client, token_issuer, f"/v1/prices/{sku}", channel="web")).json()
    marketplace = (await _get(client, token_issuer, f"/v1/prices/{sku}", channel="marketplace")).json()
    assert (web["amount"], marketplace["amount"]) == ("10.00", "11.00")


async def test_history_keeps_every_change_in_order(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    for amount in ("10.00", "9.00", "12.00"):
        await _set(client, token_issuer, sku, amount=amount, reason=f"to {amount}")
    history = (await _get(client, token_issuer, f"/v1/prices/{sku}/history")).json()["items"]
    assert [(p["amount"], p["reason"]) for p in history] == [
        ("10.00", "to 10.00"),
        ("9.00", "to 9.00"),
        ("12.00", "to 12.00"),
    ]


async def test_omnibus_lowest_price_covers_the_previous_30_days(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    start = datetime.now(UTC) + timedelta(days=1)
    # 50.00 from day 0, 30.00 from day 5, 45.00 from day 20, 40.00 from day 45 (the announced reduction).
    for day, amount in ((0, "50.00"), (5, "30.00"), (20, "45.00"), (45, "40.00")):
        await _set(client, token_issuer, sku, amount=amount, effective_from=start + timedelta(days=day))
    # At day 45 the window is days 15..45: 30.00 was still in effect on day 15, so it is the reference.
    at_45 = (
        await _get(client, token_issuer, f"/v1/prices/{sku}/lowest-30d", at=start + timedelta(days=45))
    ).json()
    # At day 60 the window is days 30..60: 45.00 (in effect on day 30) and 40.00 (from day 45).
    at_60 = (
        await _get(client, token_issuer, f"/v1/prices/{sku}/lowest-30d", at=start + timedelta(days=60))
    ).json()
    assert at_45["lowest_amount"] == "30.00"
    assert at_60["lowest_amount"] == "40.00"


async def test_omnibus_window_excludes_the_new_price_itself(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    sku = await _sku(client, token_issuer)
    start = datetime.now(UTC) + timedelta(days=1)
    await _set(client, token_issuer, sku, amount="50.00", effective_from=start)
    await _set(client, token_issuer, sku, amount="35.00", effective_from=start + timedelta(days=40))
    response = await _get(client, token_issuer, f"/v1/prices/{sku}/lowest-30d", at=start + timedelta(days=40))
    assert response.json()["lowest_amount"] == "50.00"


async def test_price_changed_event_is_published(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku = await _sku(client, token_issuer)
    await _set(client, token_issuer, sku, amount="10.00")
    await _set(client, token_issuer, sku, amount="7.50")
    events = await wait_for_events(kafka_bootstrap, PRICES, lambda e: e.subject == sku, count=2)
    assert [(e.data["amount"], e.data["previous_amount"]) for e in events] == [
        ("10.00", None),
        ("7.50", "10.00"),
    ]


async def test_scheduled_price_is_announced_when_it_takes_effect(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, kafka_bootstrap: str
) -> None:
    sku = await _sku(client, token_issuer)
    await _set(client, token_issuer, sku, amount="10.00")
    await _set(
        client, token_issuer, sku, amount="9.00", effective_from=datetime.now(UTC) + timedelta(seconds=2)
    )
    events = await wait_for_events(kafka_bootstrap, PRICES, lambda e: e.subject == sku, count=3)
    assert [(e.type, e.data["amount"]) for e in events] == [
        ("ecom.price.changed.v1", "10.00"),
        ("ecom.price.scheduled.v1", "9.00"),
        ("ecom.price.changed.v1", "9.00"),
    ]
    assert events[2].data["previous_amount"] == "10.00"
