"""Events on ecom.inbound.v1, produced by sync-service from suppliers' purchase orders and advance
shipping notices. Key: the inbound delivery's id. product-service keeps incoming stock per location from
them and receives the stock when the delivery arrives."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import topics
from contracts.registry import EventData, register

InboundKind = Literal["purchase_order", "advance_shipping_notice"]


class InboundLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


@register(
    "ecom.inbound.announced.v1",
    topic=topics.INBOUND,
    producer="sync-service",
    description="A supplier announced a delivery: these quantities are expected at the location.",
)
class InboundAnnounced(EventData):
    inbound_id: str
    supplier: str = Field(description="The supplier's code")
    supplier_reference: str = Field(description="The supplier's purchase order or notice number")
    kind: InboundKind
    location_id: str = Field(description="Where the delivery arrives")
    expected_date: date
    lines: list[InboundLine] = Field(min_length=1)


@register(
    "ecom.inbound.received.v1",
    topic=topics.INBOUND,
    producer="sync-service",
    description=(
        "An announced delivery arrived: these quantities were received at the location (product-service "
        "adds them to on-hand stock); what was announced and not received is no longer expected."
    ),
)
class InboundReceived(EventData):
    inbound_id: str
    supplier: str
    location_id: str
    lines: list[InboundLine] = Field(description="What was received; may differ from what was announced")
    received_at: datetime
