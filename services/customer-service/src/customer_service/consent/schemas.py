"""API models of the consent ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.catalog.customers import ConsentPurpose, ConsentStatus
from customer_service.customers.schemas import ConsentState

LawfulBasis = Literal[
    "consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interest"
]


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: ConsentPurpose
    status: ConsentStatus
    source: str = Field(min_length=1, max_length=100, description="e.g. checkout, preference_center, pos")
    lawful_basis: LawfulBasis = "consent"
    recorded_at: datetime | None = Field(default=None, description="When the customer decided; now if absent")


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
