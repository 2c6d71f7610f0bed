"""Events on ecom.shipments.v1, produced by sync-service from logistics partners' (3PL) updates.

Key: the order id, so every update of an order's shipments stays in order. Carrier-specific statuses
are normalised to `ShipmentStatus` before they are published.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register

ShipmentStatus = Literal[
    "label_created", "picked_up", "in_transit", "out_for_delivery", "delivered", "exception", "returned"
]


@register(
    "ecom.shipment.updated.v1",
    topic=topics.SHIPMENTS,
    producer="sync-service",
    description=(
        "A logistics partner reported a new checkpoint of one of an order's shipments. `status` is the "
        "shipment's normalised status after it (the latest checkpoint by time); customer-service moves "
        "the order to shipped or delivered from it."
    ),
)
class ShipmentUpdated(EventData):
    order_id: str
    shipment_id: str
    partner: str = Field(description="The logistics partner's code, or the client id of a bearer caller")
    carrier: str
    tracking_number: str
    status: ShipmentStatus = Field(description="The shipment's normalised status after this update")
    previous_status: ShipmentStatus | None = None
    checkpoint_status: ShipmentStatus = Field(description="The normalised status of this checkpoint")
    carrier_status: str = Field(description="The status code as the partner sent it")
    occurred_at: datetime = Field(description="When the checkpoint happened, as the partner reported it")
    estimated_delivery: date | None = None
    promised_delivery_date: date | None = None
    shipments_total: int = Field(ge=1, description="The order's shipments sync-service knows of")
    shipments_delivered: int = Field(ge=0, description="How many of them are delivered")


@register(
    "ecom.shipment.delivery_late.v1",
    topic=topics.SHIPMENTS,
    producer="sync-service",
    description=(
        "A shipment was not delivered by the promised delivery date (found by sync-service's sweep); "
        "published once per shipment."
    ),
)
class ShipmentDeliveryLate(EventData):
    order_id: str
    shipment_id: str
    partner: str
    carrier: str
    tracking_number: str
    status: ShipmentStatus = Field(description="The shipment's status when the sweep found it late")
    promised_delivery_date: date
    estimated_delivery: date | None = None
    detected_at: datetime
