"""API models of orders and their status timeline."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.catalog.inventory import BackorderReason
from contracts.catalog.shipments import ShipmentStatus
from customer_service.customers.schemas import IdentifyRequest
from servicekit.bounds import Amount, CountryCode, CurrencyCode, InCurrency, PastDatetime

OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(gt=0, le=100_000)
    currency: CurrencyCode
    unit_price: Annotated[Amount, InCurrency] = Field(
        description="At most two decimals, and no more than the currency's minor unit (none in JPY)"
    )


class OrderCreate(BaseModel):
    """A new order; give `customer_id`, or `customer` identifiers for a guest (resolved by identify)."""

    model_config = ConfigDict(extra="forbid")

    order_number: str = Field(min_length=1, max_length=100)
    customer_id: str | None = Field(default=None, max_length=36)
    customer: IdentifyRequest | None = None
    channel: str = Field(
        min_length=1, max_length=50, pattern=r"^[a-z0-9_.-]+$", description="web, pos, marketplace…"
    )
    location_id: str | None = Field(default=None, max_length=100)
    currency: CurrencyCode
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    subtotal: Annotated[Decimal | None, InCurrency] = Field(
        default=None, ge=0, max_digits=14, decimal_places=4, description="Checked against the lines when sent"
    )
    discount_total: Annotated[Decimal, InCurrency] = Field(
        default=Decimal("0"), ge=0, max_digits=14, decimal_places=4
    )
    total: Annotated[Decimal | None, InCurrency] = Field(
        default=None,
        ge=0,
        max_digits=14,
        decimal_places=4,
        description="subtotal - discount_total; checked when sent",
    )
    shipping_country: CountryCode | None = None
    billing_country: CountryCode | None = None
    placed_at: PastDatetime | None = Field(
        default=None, description="When it was placed (not in the future); now if absent"
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["paid", "shipped", "delivered", "cancelled", "refunded"]
    carrier: str | None = Field(
        default=None, min_length=1, max_length=100, description="Required when shipped"
    )
    tracking_number: str | None = Field(
        default=None, min_length=1, max_length=100, description="Required when shipped"
    )
    note: str | None = Field(default=None, max_length=500)


class OrderLineRead(BaseModel):
    sku: str
    quantity: int
    unit_price: str
    currency: str
    backordered_quantity: int | None = Field(
        default=None,
        description="Set when product-service could not reserve the line (it says so with an event "
        "shortly after the order is placed): the quantity not reserved",
    )
    backorder_reason: BackorderReason | None = Field(default=None, description="Why the line is backordered")
    backorder_expected_date: date | None = Field(
        default=None,
        description="When announced supplier deliveries are expected to cover the backordered line; "
        "null when none does",
    )


class TimelineEntry(BaseModel):
    status: OrderStatus
    previous_status: OrderStatus | None
    carrier: str | None = None
    tracking_number: str | None = None
    note: str | None = None
    changed_at: datetime


class OrderRead(BaseModel):
    id: str
    order_number: str
    customer_id: str
    channel: str
    location_id: str | None
    currency: str
    lines: list[OrderLineRead]
    subtotal: str
    discount_total: str
    total: str
    status: OrderStatus
    carrier: str | None
    tracking_number: str | None
    shipment_status: ShipmentStatus | None = Field(
        default=None,
        description="The latest status a logistics partner reported for the order's shipments "
        "(ecom.shipment.updated.v1 from sync-service)",
    )
    shipment_updated_at: datetime | None = None
    shipping_country: str | None
    billing_country: str | None
    version: int
    placed_at: datetime
    updated_at: datetime
    timeline: list[TimelineEntry]
