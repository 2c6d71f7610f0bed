"""Events on ecom.orders.v1, produced by customer-service; product-service reserves stock from them.

Amounts are decimal strings in the order's currency (e.g. "19.90"). In-store (POS) sales are orders
with channel "pos" and the store's `location_id`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.registry import EventData, register

OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, description="The variant's SKU")
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, description="Price per unit before order-level discounts")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code")


@register(
    "ecom.order.placed.v1",
    topic=topics.ORDERS,
    producer="customer-service",
    description="An order was placed (web store, marketplace or in-store). Inventory reserves its lines.",
)
class OrderPlaced(EventData):
    order_id: str
    order_number: str = Field(description="The shop's order number; unique")
    customer_id: str = Field(
        description="The customer the order belongs to (guests are resolved by identify)"
    )
    channel: str = Field(description="Sales channel, e.g. web, marketplace, pos")
    location_id: str | None = Field(
        default=None, description="Store or warehouse to fulfil from, when the channel fixes it (POS)"
    )
    currency: str = Field(min_length=3, max_length=3)
    lines: list[OrderLine] = Field(min_length=1)
    subtotal: Decimal
    discount_total: Decimal = Decimal("0")
    total: Decimal
    placed_at: datetime


@register(
    "ecom.order.status_changed.v1",
    topic=topics.ORDERS,
    producer="customer-service",
    description=(
        "An order moved to a new status. Inventory releases reserved stock on cancelled and commits it "
        "(ships it out) on shipped."
    ),
)
class OrderStatusChanged(EventData):
    order_id: str
    order_number: str
    customer_id: str
    status: OrderStatus
    previous_status: OrderStatus
    changed_at: datetime
    lines: list[OrderLine] = Field(description="The order's lines, so consumers need no other lookup")
    location_id: str | None = None
    carrier: str | None = Field(default=None, description="Set when shipped")
    tracking_number: str | None = Field(default=None, description="Set when shipped")
