"""API models of recommendations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RecommendationRead(BaseModel):
    sku: str
    score: float = Field(description="Higher is a stronger recommendation (0 for a popularity fill-in)")
    reason: str = Field(description='Why, e.g. "bought with SKU-1 by 34 customers"')
    because_of: str | None = Field(description="The SKU that led to it (None: popular)")
    customers: int = Field(description="Customers who bought both (or the popular SKU, lately)")


class RecommendationList(BaseModel):
    items: list[RecommendationRead]
    personalised: bool = Field(description="False when built without the customer's history")
    note: str | None = Field(default=None, description="Why the list is not personalised, when it is not")
    fitted_at: datetime | None = Field(description="When the model behind the list was fitted")
