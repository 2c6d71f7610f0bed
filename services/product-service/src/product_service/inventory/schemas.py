"""API models of inventory."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.catalog.inventory import BackorderReason
from product_service.catalog.schemas import CHANNEL_PATTERN, CODE_PATTERN

MAX_RESERVATION_TTL_S = 7 * 24 * 3600

MovementKind = Literal["receipt", "sale", "return", "adjustment", "transfer"]


class LocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    kind: Literal["warehouse", "store"]


class LocationRead(BaseModel):
    id: str
    code: str
    title: str
    kind: str
    created_at: datetime


class MovementCreate(BaseModel):
    """A stock movement. `quantity` is positive, except for an adjustment, which may be negative."""

    model_config = ConfigDict(extra="forbid")

    kind: MovementKind
    sku: str = Field(min_length=1, max_length=100)
    location_id: str
    quantity: int = Field(ge=-1_000_000, le=1_000_000)
    to_location_id: str | None = Field(default=None, description="Destination of a transfer")
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _quantity_and_destination(self) -> MovementCreate:
        if self.quantity == 0 or (self.quantity < 0 and self.kind != "adjustment"):
            raise ValueError("quantity must be positive (only an adjustment may be negative)")
        if (self.kind == "transfer") != (self.to_location_id is not None):
            raise ValueError("to_location_id is required for a transfer and only for a transfer")
        if self.to_location_id is not None and self.to_location_id == self.location_id:
            raise ValueError("a transfer needs two different locations")
        return self


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=1_000_000)
    location_id: str | None = Field(default=None, description="Reserve here; otherwise the service picks one")
    channel: str | None = Field(
        default=None, pattern=CHANNEL_PATTERN, description="Applies its safety buffer"
    )
    reference: str | None = Field(default=None, max_length=200)
    ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RESERVATION_TTL_S,
        description="Expire the reservation (its units become available again) this many seconds from now",
    )


class AllocationRead(BaseModel):
    location_id: str
    quantity: int


class ReservationRead(BaseModel):
    id: str
    sku: str
    location_id: str | None = Field(description="The location, when all units are held at one")
    quantity: int
    status: str = Field(description="active, released, committed, expired, backordered or cancelled")
    order_id: str | None
    channel: str | None
    reference: str | None
    expires_at: datetime | None = None
    allocations: list[AllocationRead] = Field(
        default_factory=list, description="Units held per location (several when the reservation is split)"
    )
    created_at: datetime
    backorder_reason: BackorderReason | None = Field(
        default=None,
        description="For a backordered line: insufficient_stock, unknown_sku or unknown_location",
    )
    expected_date: date | None = Field(
        default=None, description="For a backordered line: when announced inbound deliveries cover it"
    )


class ReservationPage(BaseModel):
    items: list[ReservationRead]
    next_cursor: str | None = None


class LocationStock(BaseModel):
    location_id: str
    on_hand: int
    reserved: int
    available: int
    available_for_channel: int | None = Field(
        default=None, description="available minus the channel's safety buffer (with ?channel=)"
    )
    low_stock_threshold: int
    low_stock: bool


class IncomingRead(BaseModel):
    inbound_id: str = Field(description="sync-service's inbound delivery")
    location_id: str
    quantity: int
    expected_date: date
    supplier: str


class StockRead(BaseModel):
    sku: str
    channel: str | None = None
    on_hand: int
    reserved: int
    available: int
    available_for_channel: int | None = None
    locations: list[LocationStock]
    incoming: list[IncomingRead] = Field(
        default_factory=list,
        description="Announced supplier deliveries not received yet, by expected date",
    )


class ThresholdUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low_stock_threshold: int = Field(ge=0, le=1_000_000)


class BufferUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    safety_buffer: int = Field(ge=0, le=1_000_000)


class BufferRead(BaseModel):
    channel: str
    safety_buffer: int


class MovementRead(BaseModel):
    id: int
    sku: str
    location_id: str
    kind: str
    on_hand_delta: int
    reserved_delta: int
    reference: str | None
    reason: str | None
    actor: str | None
    created_at: datetime


class MovementPage(BaseModel):
    items: list[MovementRead]
    next_cursor: str | None = None


class LowStockItem(BaseModel):
    sku: str
    location_id: str
    available: int
    low_stock_threshold: int
