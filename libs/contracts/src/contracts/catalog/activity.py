"""Events on ecom.activity.v1, produced by analytics-service's track API. Key: session id (else the
anonymous or customer id), so one visit's events stay in order.

Storefront behaviour named after the Segment e-commerce spec. Identify traits are not carried: contact
data stays in customer-service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register

ActivityName = Literal[
    "Page Viewed",
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Identify",
]
ACTIVITY_NAMES: tuple[str, ...] = ActivityName.__args__  # type: ignore[attr-defined]


@register(
    "ecom.activity.tracked.v1",
    topic=topics.ACTIVITY,
    producer="analytics-service",
    description=(
        "A storefront event accepted by POST /v1/track (validated, bounded). `message_id` is the "
        "client's idempotency key: consumers keep one event per message id."
    ),
)
class ActivityTracked(EventData):
    message_id: str = Field(min_length=1, max_length=100, description="The client's unique id of the event")
    event: ActivityName
    timestamp: datetime = Field(description="When it happened, by the client's clock")
    received_at: datetime = Field(description="When the track API accepted it")
    session_id: str | None = Field(default=None, max_length=100)
    anonymous_id: str | None = Field(default=None, max_length=100, description="Device or cookie id")
    customer_id: str | None = Field(default=None, max_length=64, description="customer-service's id")
    channel: str = Field(max_length=50, description="Traffic source / marketing channel, e.g. google")
    campaign: str = Field(default="", max_length=100, description="UTM campaign, empty when none")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="The spec's properties (sku, price, quantity, order_id...)"
    )
