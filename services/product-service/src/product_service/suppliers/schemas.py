"""API models of suppliers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from product_service.catalog.schemas import CODE_PATTERN
from servicekit.bounds import CurrencyCode, InCurrency


class SupplierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    default_lead_time_days: int = Field(default=0, ge=0, le=3650)


class SupplierRead(BaseModel):
    id: str
    code: str
    title: str
    default_lead_time_days: int
    created_at: datetime


class OfferSet(BaseModel):
    """What a supplier offers for one of our SKUs."""

    model_config = ConfigDict(extra="forbid")

    supplier_sku: str = Field(min_length=1, max_length=100)
    currency: CurrencyCode | None = None
    cost: Annotated[Decimal | None, InCurrency] = Field(
        default=None, ge=0, le=Decimal("9999999999.99"), decimal_places=2
    )
    lead_time_days: int | None = Field(default=None, ge=0, le=3650)
    min_order_quantity: int = Field(default=1, ge=1, le=10_000_000)
    available_quantity: int | None = Field(default=None, ge=0, le=1_000_000_000)


class OfferRead(BaseModel):
    supplier_id: str
    sku: str
    supplier_sku: str
    cost: Decimal | None
    currency: str | None
    lead_time_days: int = Field(description="The offer's lead time, else the supplier's default")
    min_order_quantity: int
    available_quantity: int | None
    updated_at: datetime


class FeedRowError(BaseModel):
    row_number: int
    message: str


class FeedResult(BaseModel):
    rows: int
    updated: int
    errors: list[FeedRowError]
