"""Marketing spend and expense models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from servicekit.bounds import Amount, CurrencyCode, InCurrency, SaneDate

MAX_ENTRIES = 1000


class SpendEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: SaneDate
    channel: str = Field(
        min_length=1, max_length=50, description="Marketing channel, as tracked (e.g. google)"
    )
    campaign: str = Field(default="", max_length=100, description="UTM campaign; empty for the whole channel")
    currency: CurrencyCode
    amount: Annotated[Amount, InCurrency]


class SpendBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[SpendEntry] = Field(min_length=1, max_length=MAX_ENTRIES)


class SpendRead(BaseModel):
    day: date
    channel: str
    campaign: str
    amount: float
    currency: str
    updated_at: datetime


class SpendResult(BaseModel):
    recorded: int


class ExpenseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: SaneDate
    category: str = Field(min_length=1, max_length=50, description="e.g. rent, salaries, payment_fees")
    currency: CurrencyCode
    amount: Annotated[Amount, InCurrency]
    description: str | None = Field(default=None, max_length=500)


class ExpenseRead(BaseModel):
    id: str
    day: date
    category: str
    amount: float
    currency: str
    description: str | None
    created_at: datetime
