"""The events product-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from product_service.channels.service import on_channel_changed
from product_service.inventory.orders import on_order_placed, on_order_status_changed
from servicekit.events import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(
        name="product-service.orders",
        handlers={
            "ecom.order.placed.v1": on_order_placed,
            "ecom.order.status_changed.v1": on_order_status_changed,
        },
    ),
    ConsumerSpec(
        name="product-service.channels",
        handlers={
            "ecom.channel.registered.v1": on_channel_changed,
            "ecom.channel.updated.v1": on_channel_changed,
            "ecom.channel.retired.v1": on_channel_changed,
        },
    ),
]
