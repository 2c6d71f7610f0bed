"""Helpers of the partner tests (3PL, suppliers, POS): orders announced on the broker as customer-service
announces them, logistics partners and Standard Webhooks signatures."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook
from sync_support import Running, unique

from contracts import build_event, topics
from contracts.catalog.orders import OrderLine, OrderPlaced
from servicekit.testing.events import eventually, produce
from sync_service.orders.models import KnownOrder


async def announce_orders(running: Running, count: int = 1) -> list[KnownOrder]:
    """Orders placed as customer-service announces them on ecom.orders.v1, once sync-service knows them."""
    events = []
    for _ in range(count):
        order_id = str(uuid.uuid4())
        events.append(
            build_event(
                "ecom.order.placed.v1",
                OrderPlaced(
                    order_id=order_id,
                    order_number=unique("SO-"),
                    customer_id=str(uuid.uuid4()),
                    channel="web",
                    currency="EUR",
                    lines=[OrderLine(sku="MUG", quantity=1, unit_price=Decimal("9.90"), currency="EUR")],
                    subtotal=Decimal("9.90"),
                    total=Decimal("9.90"),
                    placed_at=datetime.now(UTC),
                ),
                subject=order_id,
                sequence=1,
            )
        )
    await produce(running.settings.kafka_bootstrap_servers, topics.ORDERS, events)
    ids = [event.subject for event in events]

    async def projected() -> list[KnownOrder] | None:
        async with running.database.session() as session:
            found = [await session.get(KnownOrder, order_id) for order_id in ids]
        return [order for order in found if order is not None] if all(found) else None

    orders: list[KnownOrder] = await eventually(projected)
    return orders


async def register_partner(running: Running, **fields: Any) -> dict[str, Any]:
    body = {"code": unique("3pl-"), "name": "Acme Fulfilment", **fields}
    response = await running.client.post("/v1/logistics-partners", json=body, headers=running.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def signed(
    secret: str, body: dict[str, Any] | bytes, *, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers a partner sends."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = unique("msg_")
    stamp = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, stamp, data.decode())
    return data, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def rejected(source: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("sync_webhook_rejected_total", {"source": source, "reason": reason})
    return value or 0.0


def update(order_id: str, tracking: str, status: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "carrier": extra.pop("carrier", "DHL"),
        "tracking_number": tracking,
        "status": status,
        "occurred_at": at,
        **extra,
    }
