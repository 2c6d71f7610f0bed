"""Stores' receipts recorded from end-of-day sales files: one row per channel and receipt id."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class PosReceipt(SQLModel, table=True):
    __tablename__ = "pos_receipts"

    channel_id: str = Field(primary_key=True, max_length=36)
    receipt_id: str = Field(primary_key=True, max_length=100)
    fingerprint: str = Field(max_length=64, description="Of the receipt's content: a resend must match")
    store: str = Field(max_length=36)
    line_count: int
    sold_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
