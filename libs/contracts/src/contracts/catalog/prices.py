"""Events on ecom.prices.v1, produced by product-service. Key: SKU. Amounts are decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register


@register(
    "ecom.price.changed.v1",
    topic=topics.PRICES,
    producer="product-service",
    description=(
        "A SKU's price changed: published when the new price takes effect (at once, or when a scheduled "
        "change's `effective_from` arrives)."
    ),
)
class PriceChanged(EventData):
    sku: str
    currency: str = Field(min_length=3, max_length=3)
    channel: str | None = Field(default=None, description="The channel, or null for every channel")
    amount: Decimal
    previous_amount: Decimal | None = None
    cost: Decimal | None = Field(
        default=None, description="The SKU's unit cost recorded with this price (cost of goods), if known"
    )
    effective_from: datetime
    source: str = Field(description="Where the change came from, e.g. api, import, seed")


@register(
    "ecom.price.scheduled.v1",
    topic=topics.PRICES,
    producer="product-service",
    description=("A future price was recorded; ecom.price.changed.v1 follows when `effective_from` arrives."),
)
class PriceScheduled(EventData):
    sku: str
    currency: str = Field(min_length=3, max_length=3)
    channel: str | None = Field(default=None, description="The channel, or null for every channel")
    amount: Decimal
    effective_from: datetime
    source: str


class _PromotionWindow(EventData):
    promotion_id: str
    kind: Literal["percentage", "amount"]
    skus: list[str] = Field(description="SKUs the promotion names directly")
    category_ids: list[str] = Field(description="Categories (with their subcategories) it applies to")
    channels: list[str] = Field(description="Channels it runs on; empty means every channel")
    starts_at: datetime
    ends_at: datetime
    percent: Decimal | None = Field(
        default=None,
        description="A percentage promotion's discount, e.g. 15 (absent before 2026-11)",
    )
    amount: Decimal | None = Field(default=None, description="An amount promotion's discount per unit")
    currency: str | None = Field(default=None, description="The currency of `amount`")


@register(
    "ecom.promotion.started.v1",
    topic=topics.PRICES,
    producer="product-service",
    description="A promotion began: effective prices of its SKUs changed. Key: promotion id.",
)
class PromotionStarted(_PromotionWindow):
    pass


@register(
    "ecom.promotion.ended.v1",
    topic=topics.PRICES,
    producer="product-service",
    description="A promotion ended: its SKUs are back to their base prices. Key: promotion id.",
)
class PromotionEnded(_PromotionWindow):
    pass
