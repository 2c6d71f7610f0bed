"""API models of pricing. Amounts are decimals with at most two places, and no more than the currency's minor
unit has (none in JPY), in the given currency."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from product_service.catalog.schemas import CHANNEL_PATTERN
from servicekit.bounds import CurrencyCode, InCurrency, SaneDatetime, ShortStr

CURRENCY_PATTERN = r"^[A-Z]{3}$"


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, so naive and aware times compare instead of raising."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class PriceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: CurrencyCode
    amount: Annotated[Decimal, InCurrency] = Field(ge=0, le=Decimal("9999999999.99"), decimal_places=2)
    cost: Annotated[Decimal | None, InCurrency] = Field(
        default=None, ge=0, le=Decimal("9999999999.99"), decimal_places=2
    )
    channel: str | None = Field(default=None, pattern=CHANNEL_PATTERN, description="Omit for every channel")
    effective_from: SaneDatetime | None = Field(
        default=None, description="When the price applies (default now); a future time schedules it"
    )
    reason: str | None = Field(default=None, max_length=500)
    source: str = Field(default="api", pattern=r"^[a-z][a-z0-9_\-]{0,49}$")


class PriceRead(BaseModel):
    sku: str
    currency: str
    channel: str | None
    amount: Decimal
    cost: Decimal | None
    margin: Decimal | None = Field(description="(amount - cost) / amount, when the cost is known")
    effective_from: datetime
    created_at: datetime
    actor: str
    reason: str | None
    source: str


class LowestPriceRead(BaseModel):
    sku: str
    currency: str
    channel: str | None
    lowest_amount: Decimal = Field(description="Lowest price in effect during the window")
    window_start: datetime
    window_end: datetime


class PromotionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    kind: Literal["percentage", "amount"]
    currency: CurrencyCode | None = Field(default=None, description="Required for an amount")
    value: Annotated[Decimal, InCurrency] = Field(
        gt=0, le=Decimal("9999999999.99"), decimal_places=2, description="Percent or amount off"
    )
    skus: list[ShortStr] = Field(default_factory=list, max_length=10_000)
    category_ids: list[ShortStr] = Field(default_factory=list, max_length=1000)
    channels: list[ShortStr] = Field(default_factory=list, max_length=50, description="Empty: every channel")
    starts_at: SaneDatetime
    ends_at: SaneDatetime

    @model_validator(mode="after")
    def _consistent(self) -> PromotionCreate:
        if self.kind == "percentage" and (self.value > 100 or self.currency is not None):
            raise ValueError("a percentage is at most 100 and has no currency")
        if self.kind == "amount" and self.currency is None:
            raise ValueError("an amount promotion needs a currency")
        if not self.skus and not self.category_ids:
            raise ValueError("name at least one SKU or category")
        if _utc(self.ends_at) <= _utc(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        for channel in self.channels:
            if not re.match(CHANNEL_PATTERN, channel):
                raise ValueError(f"{channel!r} is not a channel code")
        return self


PromotionStatus = Literal["scheduled", "running", "ended"]


class PromotionRead(BaseModel):
    id: str
    title: str
    kind: str
    value: Decimal
    currency: str | None
    skus: list[str]
    category_ids: list[str]
    channels: list[str]
    starts_at: datetime
    ends_at: datetime
    status: PromotionStatus = Field(description="scheduled, running or ended, at the time of the answer")
    version: int = Field(description="Send it back as If-Match to change the promotion")


class PromotionUpdate(BaseModel):
    """Fields to change; absent fields stay. Once a promotion runs, only its title and end can change
    (end it and define a new one to change the discount); an ended one cannot change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    value: Decimal | None = Field(default=None, gt=0, le=Decimal("9999999999.99"), decimal_places=2)
    currency: str | None = Field(default=None, pattern=CURRENCY_PATTERN)
    skus: list[str] | None = Field(default=None, max_length=10_000)
    category_ids: list[str] | None = Field(default=None, max_length=1000)
    channels: list[str] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class EffectivePriceRead(BaseModel):
    sku: str
    currency: str
    channel: str | None
    at: datetime
    base_amount: Decimal = Field(description="The price before promotions")
    effective_amount: Decimal = Field(description="What the channel shows: the best promotion applied")
    promotion_id: str | None
    reference_amount: Decimal | None = Field(
        default=None, description="With a promotion: the lowest price of the previous 30 days (EU Omnibus)"
    )
