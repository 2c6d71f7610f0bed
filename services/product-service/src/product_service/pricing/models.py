"""Pricing tables: the append-only price history (amounts in minor units, e.g. cents)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

ALL_CHANNELS = ""


class PriceRecord(SQLModel, table=True):
    """One price of a SKU in a currency, for one channel or all (channel ""), from `effective_from` on.

    Rows are never updated or deleted: the price at any moment is the latest row effective by then."""

    __tablename__ = "prices"
    __table_args__ = (sa.Index("ix_prices_lookup", "sku", "currency", "channel", "effective_from"),)

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=100)
    currency: str = Field(max_length=3)
    channel: str = Field(default=ALL_CHANNELS, max_length=50)
    # BigInteger as in the migration: bound as int32, a filter past 21,474,836.47 would fail on PostgreSQL
    amount_minor: int = Field(sa_type=sa.BigInteger)
    cost_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    effective_from: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=500)
    source: str = Field(max_length=50)


class Promotion(SQLModel, table=True):
    """A discount defined once: percentage or amount, on SKUs and/or categories, on channels, for a period."""

    __tablename__ = "promotions"

    id: str = Field(primary_key=True, max_length=36)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=20, description="percentage or amount")
    percent_bp: int | None = Field(default=None, description="Percentage in basis points (1250 = 12.5 %)")
    amount_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    skus: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    category_ids: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    channels: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    starts_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    ends_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    started_announced: bool = False
    ended_announced: bool = False
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    version: int = Field(default=1, description="Bumped by every change; the ETag")
    updated_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))


class PriceAnnouncement(SQLModel, table=True):
    """Prices whose ecom.price.changed.v1 was published (kept apart so the history stays append-only).

    A scheduled price is announced by the scheduler when it takes effect; inserting this row is the
    claim, so two replicas never announce one price twice."""

    __tablename__ = "price_announcements"

    price_id: int = Field(primary_key=True, foreign_key="prices.id")
    announced_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
