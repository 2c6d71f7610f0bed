"""The events sync-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from servicekit.events import ConsumerSpec
from sync_service.listings import facts
from sync_service.orders.projection import on_order_placed, on_order_status_changed

LISTINGS_CONSUMER = "sync-service.listings"  # its events change listings

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(
        name=LISTINGS_CONSUMER,
        handlers={
            "ecom.product.created.v1": facts.on_products,
            "ecom.product.updated.v1": facts.on_products,
            "ecom.product.archived.v1": facts.on_products,
            "ecom.price.changed.v1": facts.on_price_changes,
            "ecom.promotion.started.v1": facts.on_promotions,
            "ecom.promotion.ended.v1": facts.on_promotions,
            "ecom.stock.changed.v1": facts.on_stock_changes,
            "ecom.channel.registered.v1": facts.on_channels,
            "ecom.channel.updated.v1": facts.on_channels,
            "ecom.channel.retired.v1": facts.on_channels,
        },
    ),
    ConsumerSpec(
        name="sync-service.orders",
        handlers={
            "ecom.order.placed.v1": on_order_placed,
            "ecom.order.status_changed.v1": on_order_status_changed,
        },
    ),
]
