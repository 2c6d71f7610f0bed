"""Forecast tables: one row per SKU x location (and per SKU over all locations), replaced by each refit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

ALL_LOCATIONS = "*"


class DemandForecast(SQLModel, table=True):
    """A SKU's fitted demand at a location (`*`: all locations together) after `history_end`: the daily
    mean, median and interval for `horizon` days, and `lead_quantiles[d-1]`, the `service_level`
    quantile of the total demand over the next d days (reorder points for any lead time up to the
    horizon)."""

    __tablename__ = "demand_forecasts"

    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(max_length=36)
    method: str = Field(max_length=20)
    history_start: date
    history_end: date
    rate: float
    adi: float | None = None
    interval_level: float
    service_level: float
    mean: list[float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    median: list[float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    lower: list[float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    upper: list[float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    lead_quantiles: list[float] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    fitted_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
