"""API models of forecasts and reorder suggestions."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ForecastDay(BaseModel):
    day: date
    mean: float = Field(description="Expected units (what adds up over a lead time)")
    median: float = Field(description="Units of a typical day (0 for a SKU selling on under half its days)")
    lower: float = Field(description="Lower bound of the prediction interval")
    upper: float = Field(description="Upper bound of the prediction interval")


class ForecastRead(BaseModel):
    sku: str
    location_id: str = Field(description="`*` for all locations together")
    method: str = Field(description="tsb (intermittent), weekly_ses (regular) or no_sales")
    daily_rate: float = Field(description="Smoothed units per average day")
    interval_level: float
    history_start: date | None
    history_end: date | None = Field(description="The last day of sales the model saw")
    fitted_at: datetime
    run_id: str
    available: int | None = Field(description="Available stock now (None: no stock record)")
    days_of_cover: float | None = Field(description="Days the available stock lasts (None: nothing sells)")
    days: list[ForecastDay]


class ReorderSuggestionRead(BaseModel):
    sku: str
    location_id: str
    quantity: int = Field(description="Units to order now")
    available: int
    days_of_cover: float | None
    stockout_before_arrival: bool = Field(description="The stock runs out before an order placed now arrives")
    reorder_point: float
    order_up_to: float
    expected_lead_time_demand: float
    lead_time_days: int
    min_order_quantity: int
    supplier_id: str | None
    supply_terms: str = Field(description="supplier (an offer from product-service) or default")
    reason: str


class ReorderSuggestionList(BaseModel):
    items: list[ReorderSuggestionRead]
    fitted_at: datetime
    service_level: float
    review_days: int
    warnings: list[str] = Field(description="E.g. supplier terms could not be read and defaults were used")
