"""The events sync-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from servicekit.events import ConsumerSpec
from sync_service.orders.projection import on_order_placed, on_order_status_changed

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(
        name="sync-service.orders",
        handlers={
            "ecom.order.placed.v1": on_order_placed,
            "ecom.order.status_changed.v1": on_order_status_changed,
        },
    ),
]
