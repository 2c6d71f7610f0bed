"""API models of shipment updates (what a logistics partner posts) and of tracking."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from contracts.catalog.shipments import ShipmentStatus
from servicekit.bounds import SaneDate, SaneDatetime, date_time_text


class ShipmentUpdateIn(BaseModel):
    """One checkpoint of one shipment, as a logistics partner reports it. Name the order by `order_id`
    or by the shop's `order_number`."""

    model_config = ConfigDict(extra="forbid")

    order_id: str | None = Field(default=None, min_length=1, max_length=36)
    order_number: str | None = Field(default=None, min_length=1, max_length=100)
    carrier: str = Field(min_length=1, max_length=100, pattern=r"^[\w .&-]+$")
    tracking_number: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    status: str = Field(min_length=1, max_length=100, description="The carrier's status code")
    occurred_at: Annotated[SaneDatetime, BeforeValidator(date_time_text)] = Field(
        description="When it happened: RFC 3339 with a time zone"
    )
    location: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    estimated_delivery: SaneDate | None = None
    promised_delivery_date: SaneDate | None = Field(
        default=None,
        description="The delivery date promised; kept from the first update that gives one, so a "
        "later estimate cannot move the promise",
    )

    @model_validator(mode="after")
    def _one_order_reference(self) -> ShipmentUpdateIn:
        if (self.order_id is None) == (self.order_number is None):
            raise ValueError("give exactly one of order_id and order_number")
        return self

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone (e.g. 2026-11-29T10:00:00Z)")
        return value


class ShipmentAccepted(BaseModel):
    shipment_id: str
    order_id: str
    status: ShipmentStatus = Field(description="The shipment's status after this update")
    checkpoint_status: ShipmentStatus
    duplicate: bool = Field(description="True when this checkpoint had been received before (no change)")


class Checkpoint(BaseModel):
    status: ShipmentStatus
    carrier_status: str
    occurred_at: datetime
    location: str | None
    description: str | None


class ShipmentTracking(BaseModel):
    shipment_id: str
    carrier: str
    tracking_number: str
    status: ShipmentStatus
    estimated_delivery: date | None
    promised_delivery_date: date | None
    late: bool = Field(description="Not delivered and past the promised delivery date")
    checkpoints: list[Checkpoint] = Field(description="Oldest first")


class OrderTracking(BaseModel):
    order_id: str
    status: ShipmentStatus | None = Field(
        description="delivered when every shipment is; else the least advanced open shipment's status; "
        "null before any shipment is reported"
    )
    estimated_delivery: date | None = Field(description="The latest estimate over undelivered shipments")
    shipments: list[ShipmentTracking]
