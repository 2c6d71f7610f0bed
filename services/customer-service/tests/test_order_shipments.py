"""Partners' updates on orders: shipment updates from logistics partners (ecom.shipment.updated.v1) move
orders to shipped and delivered (through the real broker, and raced against each other and against the
API's status changes); a backordered line shows when a supplier's delivery is expected to cover it."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from customer_helpers import create_customer
from test_orders import WRITE, place

from contracts import CloudEvent, build_event, topics
from contracts.catalog.inventory import StockBackordered, StockBackorderExpected
from contracts.catalog.shipments import ShipmentUpdated
from customer_service.config import Settings
from customer_service.main import create_app
from customer_service.orders.backorders import on_backorder_expected, on_stock_backordered
from customer_service.orders.service import TRANSITIONS
from customer_service.orders.shipments import SHIPMENT_TRANSITIONS, on_shipment_updated
from servicekit.db import Database
from servicekit.testing import TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.asyncio(loop_scope="module")

EACH = 3


@dataclass(frozen=True)
class Running:
    client: httpx.AsyncClient
    database: Database
    tokens: TestTokenIssuer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """The service with its consumers, shared by this module's tests."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
    )
    app = create_app(settings)
    async with running_app(app, token_issuer) as http:
        yield Running(client=http, database=app.state.runtime.database, tokens=token_issuer)


def shipment_event(
    order_id: str, status: str, *, minutes: int = 0, delivered: int = 0, total: int = 1
) -> CloudEvent:
    return build_event(
        "ecom.shipment.updated.v1",
        ShipmentUpdated(
            order_id=order_id,
            shipment_id=str(uuid.uuid4()),
            partner="acme-3pl",
            carrier="DHL",
            tracking_number="JD0001",
            status=status,  # type: ignore[arg-type]
            checkpoint_status=status,  # type: ignore[arg-type]
            carrier_status=status,
            occurred_at=datetime(2026, 11, 29, 8, tzinfo=UTC) + timedelta(minutes=minutes),
            shipments_total=total,
            shipments_delivered=delivered,
        ),
        subject=order_id,
    )


async def _order(running: Running, *, paid: bool = True) -> dict[str, Any]:
    customer = await create_customer(running.client, running.tokens)
    order = (await place(running.client, running.tokens, customer_id=customer["id"])).json()
    if paid:
        response = await running.client.post(
            f"/v1/orders/{order['id']}/status",
            json={"status": "paid"},
            headers=running.tokens.auth_header(*WRITE),
        )
        assert response.status_code == 200
    return dict(order)


async def _read(running: Running, order_id: str) -> dict[str, Any]:
    response = await running.client.get(f"/v1/orders/{order_id}", headers=running.tokens.auth_header(*WRITE))
    return dict(response.json())


async def test_a_shipment_event_on_the_broker_moves_the_order_to_shipped_then_delivered(
    running: Running, kafka_bootstrap: str
) -> None:
    order = await _order(running)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in (
            shipment_event(order["id"], "in_transit"),
            shipment_event(order["id"], "delivered", minutes=90, delivered=1),
        ):
            await producer.send_and_wait(topics.SHIPMENTS, event.to_json_bytes(), key=event.subject.encode())
    finally:
        await producer.stop()

    deadline = time.monotonic() + 20
    while True:
        current = await _read(running, order["id"])
        if current["status"] == "delivered" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)

    assert [entry["status"] for entry in current["timeline"]] == ["placed", "paid", "shipped", "delivered"]
    shipped = current["timeline"][2]
    assert (shipped["carrier"], shipped["tracking_number"]) == ("DHL", "JD0001")
    assert "acme-3pl" in shipped["note"]
    assert current["shipment_status"] == "delivered"


async def test_an_unpaid_order_a_carrier_picked_up_is_shipped(running: Running) -> None:
    order = await _order(running, paid=False)

    async with running.database.session() as session:
        await on_shipment_updated(session, shipment_event(order["id"], "picked_up"))

    assert (await _read(running, order["id"]))["status"] == "shipped"


async def test_a_label_or_an_exception_does_not_move_the_order(running: Running) -> None:
    order = await _order(running)

    for minutes, status in enumerate(("label_created", "exception")):
        async with running.database.session() as session:
            await on_shipment_updated(session, shipment_event(order["id"], status, minutes=minutes))

    current = await _read(running, order["id"])
    assert current["status"] == "paid"
    assert current["shipment_status"] == "exception"


async def test_one_delivered_shipment_of_two_does_not_deliver_the_order(running: Running) -> None:
    order = await _order(running)

    async with running.database.session() as session:
        await on_shipment_updated(session, shipment_event(order["id"], "delivered", delivered=1, total=2))

    assert (await _read(running, order["id"]))["status"] == "shipped"


async def _apply(running: Running, event: CloudEvent) -> None:
    """As the consumer does: retried while a concurrent change makes it conflict."""
    for _ in range(10):
        try:
            async with running.database.session() as session:
                await on_shipment_updated(session, event)
            return
        except Exception:
            await asyncio.sleep(0.01)
    raise AssertionError("the shipment update never applied")


RACES = ["in_transit+delivered", "in_transit+in_transit", "in_transit+cancel", "delivered+refund"]


@pytest.mark.parametrize("race", RACES)
async def test_racing_shipment_updates_and_status_changes_each_take_effect_once(
    running: Running, race: str
) -> None:
    order = await _order(running)
    first, second = race.split("+")
    headers = running.tokens.auth_header(*WRITE)

    def contender(kind: str, n: int) -> Any:
        if kind in ("cancel", "refund"):
            status = {"cancel": "cancelled", "refund": "refunded"}[kind]
            return running.client.post(
                f"/v1/orders/{order['id']}/status", json={"status": status}, headers=headers
            )
        delivered = 1 if kind == "delivered" else 0
        return _apply(
            running,
            shipment_event(order["id"], kind, minutes=n + (60 if delivered else 0), delivered=delivered),
        )

    await asyncio.gather(*(contender(kind, n) for kind in (first, second) for n in range(EACH)))

    current = await _read(running, order["id"])
    timeline = current["timeline"]
    statuses = [entry["status"] for entry in timeline]
    assert len(set(statuses)) == len(statuses), statuses  # no change recorded twice
    for before, after in itertools.pairwise(timeline):
        assert after["previous_status"] == before["status"], timeline
        assert after["status"] in SHIPMENT_TRANSITIONS[before["status"]] | TRANSITIONS[before["status"]], (
            timeline
        )
    assert statuses[-1] == current["status"]
    assert current["version"] == len(timeline)


async def test_a_backordered_line_shows_when_incoming_stock_is_expected(running: Running) -> None:
    order = await _order(running, paid=False)
    backordered = build_event(
        "ecom.stock.backordered.v1",
        StockBackordered(sku="MUG", order_id=order["id"], quantity=1, reservation_id="r-1"),
        subject="MUG",
    )
    expected = build_event(
        "ecom.stock.backorder_expected.v1",
        StockBackorderExpected(
            sku="MUG", order_id=order["id"], reservation_id="r-1", quantity=1, expected_date=date(2026, 12, 5)
        ),
        subject="MUG",
    )

    async with running.database.session() as session:
        await on_stock_backordered(session, backordered)
    before = await _read(running, order["id"])
    async with running.database.session() as session:
        await on_backorder_expected(session, expected)
    after = await _read(running, order["id"])

    mug = next(line for line in before["lines"] if line["sku"] == "MUG")
    assert (mug["backorder_reason"], mug["backorder_expected_date"]) == ("insufficient_stock", None)
    mug = next(line for line in after["lines"] if line["sku"] == "MUG")
    assert mug["backorder_expected_date"] == "2026-12-05"
    assert after["version"] == before["version"] + 1
