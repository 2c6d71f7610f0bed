"""The events sync-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from servicekit.events import ConsumerSpec
from sync_service.listings import facts

CONSUMERS: list[ConsumerSpec] = [
    ConsumerSpec(
        name="sync-service.listings",
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
]
