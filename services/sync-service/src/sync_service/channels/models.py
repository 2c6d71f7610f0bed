"""The channel registry's table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Channel(SQLModel, table=True):
    """A sales channel: where pushes go (webhook, pos) or what a feed shows, and how its listings are
    computed (currency, price adjustment, categories, locations, buffer, completeness threshold)."""

    __tablename__ = "channels"

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=50, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=10, description="webhook, pos or feed")
    endpoint: str | None = Field(default=None, max_length=2000)
    secret_ciphertext: str = Field(max_length=200, description="The signing secret, AES-GCM sealed")
    currency: str = Field(max_length=3)
    locale: str = Field(max_length=20)
    price_adjustment_bp: int = Field(default=0, description="Price adjustment in basis points (1000 = +10 %)")
    category_ids: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    location_codes: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    safety_buffer: int = 0
    completeness_threshold: float = 1.0
    drift_policy: str = Field(default="report", max_length=10)
    status: str = Field(default="enabled", max_length=10, description="enabled, paused or retired")
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
