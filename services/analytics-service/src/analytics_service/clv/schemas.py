"""API model of a customer's lifetime value."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CustomerValueRead(BaseModel):
    customer_id: str
    orders: int = Field(description="Counted orders so far")
    historical_revenue_minor: int = Field(description="Net revenue of those orders (minor units)")
    predicted_spend_minor: int | None = Field(
        description="Expected net spend over the horizon (None: not fitted)"
    )
    expected_purchases: float | None
    probability_alive: float | None = Field(description="Probability the customer still buys (BG/NBD)")
    horizon_days: int | None
    fitted_at: datetime | None
