"""Funnel and cohort models."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class FunnelStep(BaseModel):
    step: str = Field(description="sessions, viewed, added, checkout, purchased")
    sessions: int = Field(description="Sessions that reached the step")
    conversion_from_previous: float | None = Field(description="sessions / sessions of the previous step")
    drop_off: float | None = Field(description="1 - conversion_from_previous")


class FunnelChannel(BaseModel):
    channel: str
    steps: list[FunnelStep]


class Funnel(BaseModel):
    start: date
    end: date
    total: list[FunnelStep]
    channels: list[FunnelChannel]


class Cohort(BaseModel):
    cohort: str = Field(description="Month of the customers' first counted order, YYYY-MM")
    customers: int
    retention: list[float] = Field(
        description="Share of the cohort ordering again in month 0, 1, 2... after it (month 0 is 1.0)"
    )


class Cohorts(BaseModel):
    start: date
    end: date
    cohorts: list[Cohort]


class ProductDay(BaseModel):
    day: date
    views: int
    adds: int
    removes: int
    orders: int
    units: int
    revenue: float
    cost_of_goods: float


class ProductSeries(BaseModel):
    sku: str
    category_id: str | None
    status: str | None
    start: date
    end: date
    days: list[ProductDay] = Field(description="Every day of the range (zeros included), all locations")


class TopProduct(BaseModel):
    sku: str
    views: int
    adds: int
    orders: int
    units: int
    revenue: float
    view_to_purchase: float | None = Field(description="orders / views")
