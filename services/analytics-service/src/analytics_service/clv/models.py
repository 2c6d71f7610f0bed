"""Predicted customer lifetime value per customer, replaced by each refit."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class PredictedClv(SQLModel, table=True):
    """What the BG/NBD + Gamma-Gamma model expects of a customer over the `horizon_days` after
    `fitted_at`: purchases, probability of still being a customer, net spend (minor units)."""

    __tablename__ = "predicted_clv"

    customer_id: str = Field(primary_key=True, max_length=64)
    run_id: str = Field(max_length=36)
    horizon_days: int
    expected_purchases: float
    probability_alive: float
    predicted_spend_minor: int = Field(sa_type=sa.BigInteger)
    fitted_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class PredictedClvCohort(SQLModel, table=True):
    """The predictions of one refit summed per acquisition cohort: customers (not merged away, with a first
    counted order) by first-order day (UTC), acquisition channel and campaign ("" when none), their count
    and predicted net spend. The `predicted_clv` KPI is a prefix sum over these rows instead of an average
    over every customer; written with `predicted_clv` in the refit's transaction."""

    __tablename__ = "predicted_clv_cohorts"

    first_order_day: date = Field(primary_key=True)
    acquisition_channel: str = Field(primary_key=True, max_length=50)
    acquisition_campaign: str = Field(primary_key=True, max_length=100)
    customers: int
    predicted_spend_minor: int = Field(sa_type=sa.BigInteger)
