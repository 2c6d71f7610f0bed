"""API models of the consent ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.catalog.customers import ConsentPurpose, ConsentStatus
from customer_service.customers.schemas import ConsentState
from servicekit.bounds import SaneDatetime

CLOCK_SKEW = timedelta(minutes=1)
"""How far ahead of this server's clock a client's `recorded_at` may be."""

LawfulBasis = Literal[
    "consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interest"
]


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: ConsentPurpose
    status: ConsentStatus
    source: str = Field(min_length=1, max_length=100, description="e.g. checkout, preference_center, pos")
    lawful_basis: LawfulBasis = "consent"
    recorded_at: SaneDatetime | None = Field(
        default=None, description="When the customer decided (not in the future); now if absent"
    )

    @field_validator("recorded_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            if aware > datetime.now(UTC) + CLOCK_SKEW:
                raise ValueError("a consent cannot be recorded in the future")
        return value


class ConsentEntry(BaseModel):
    id: int
    purpose: ConsentPurpose
    status: ConsentStatus
    source: str
    lawful_basis: str
    recorded_at: datetime


class ConsentOverview(BaseModel):
    customer_id: str
    current: dict[str, ConsentState]
    ledger: list[ConsentEntry]
