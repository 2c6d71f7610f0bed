"""Helpers of the reservation tests: a running service with its database, stocked SKUs, order events,
and the ledger invariant (replaying the movement ledger gives the stock rows)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from product_support import create_product, unique

from contracts import CloudEvent, build_event
from contracts.catalog.orders import OrderLine, OrderPlaced, OrderStatusChanged
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer


@dataclass(frozen=True)
class Running:
    """The running service: its HTTP client and the database it writes to (for event handlers and the
    expiry sweep, which a test calls directly to race them against requests)."""

    client: httpx.AsyncClient
    database: Database
    tokens: TestTokenIssuer

    def writer(self) -> dict[str, str]:
        return self.tokens.auth_header("inventory:write")

    def reader(self) -> dict[str, str]:
        return self.tokens.auth_header("products:read")


async def location(app: Running, kind: str = "warehouse") -> str:
    response = await app.client.post(
        "/v1/locations",
        json={"code": unique("loc_"), "title": "Location", "kind": kind},
        headers=app.writer(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def sku(app: Running) -> str:
    value = unique("SKU-")
    await create_product(app.client, app.tokens, skus=[value])
    return value


async def move(app: Running, **body: Any) -> httpx.Response:
    return await app.client.post("/v1/inventory/movements", json=body, headers=app.writer())


async def receive(app: Running, sku_: str, location_id: str, quantity: int) -> None:
    response = await move(app, kind="receipt", sku=sku_, location_id=location_id, quantity=quantity)
    assert response.status_code == 201, response.text


async def reserve(app: Running, **body: Any) -> httpx.Response:
    return await app.client.post("/v1/inventory/reservations", json=body, headers=app.writer())


async def reservation(app: Running, reservation_id: str) -> dict[str, Any]:
    response = await app.client.get(f"/v1/inventory/reservations/{reservation_id}", headers=app.reader())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def stock(app: Running, sku_: str) -> dict[str, Any]:
    response = await app.client.get(f"/v1/inventory/{sku_}", headers=app.reader())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def ledger(app: Running, sku_: str) -> list[dict[str, Any]]:
    """Every movement of the SKU, oldest first, all pages."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        response = await app.client.get(
            f"/v1/inventory/{sku_}/movements", params=params, headers=app.reader()
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


async def assert_ledger_adds_up(app: Running, sku_: str, reservation_ids: list[str]) -> dict[str, Any]:
    """Replay the ledger and compare with the stock rows: on-hand and reserved per location are the sums
    of the movements' deltas, reserved is what the active reservations hold, and nothing is negative."""
    on_hand: dict[str, int] = defaultdict(int)
    reserved: dict[str, int] = defaultdict(int)
    for movement in await ledger(app, sku_):
        on_hand[movement["location_id"]] += movement["on_hand_delta"]
        reserved[movement["location_id"]] += movement["reserved_delta"]
    held: dict[str, int] = defaultdict(int)
    for reservation_id in reservation_ids:
        body = await reservation(app, reservation_id)
        if body["status"] == "active":
            for allocation in body["allocations"]:
                held[allocation["location_id"]] += allocation["quantity"]
    current = await stock(app, sku_)
    rows = {row["location_id"]: row for row in current["locations"]}
    assert {loc: (row["on_hand"], row["reserved"]) for loc, row in rows.items()} == {
        loc: (on_hand[loc], reserved[loc]) for loc in rows
    }
    assert set(on_hand) == set(rows)
    assert {loc: n for loc, n in held.items() if n} == {
        loc: row["reserved"] for loc, row in rows.items() if row["reserved"]
    }
    for row in rows.values():
        assert row["available"] == row["on_hand"] - row["reserved"] >= 0
        assert row["reserved"] >= 0
    assert current["available"] == sum(row["available"] for row in rows.values())
    return current


def order_lines(sku_: str, quantity: int) -> list[OrderLine]:
    return [OrderLine(sku=sku_, quantity=quantity, unit_price=Decimal("9.90"), currency="EUR")]


def order_placed(
    order_id: str, sku_: str, quantity: int, *, channel: str = "web", location_id: str | None = None
) -> CloudEvent:
    total = Decimal("9.90") * quantity
    return build_event(
        "ecom.order.placed.v1",
        OrderPlaced(
            order_id=order_id,
            order_number=unique("N-"),
            customer_id=unique("c-"),
            channel=channel,
            location_id=location_id,
            currency="EUR",
            lines=order_lines(sku_, quantity),
            subtotal=total,
            total=total,
            placed_at=datetime.now(UTC),
        ),
        subject=order_id,
    )


def order_status_changed(
    order_id: str, sku_: str, quantity: int, status: str, *, previous_status: str = "paid"
) -> CloudEvent:
    return build_event(
        "ecom.order.status_changed.v1",
        OrderStatusChanged(
            order_id=order_id,
            order_number=unique("N-"),
            customer_id=unique("c-"),
            status=status,  # type: ignore[arg-type]
            previous_status=previous_status,  # type: ignore[arg-type]
            changed_at=datetime.now(UTC),
            lines=order_lines(sku_, quantity),
        ),
        subject=order_id,
    )
