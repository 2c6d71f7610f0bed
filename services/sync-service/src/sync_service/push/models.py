"""Deliveries: each push of a batch of listings to a channel, with its retries and outcome."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Delivery(SQLModel, table=True):
    """One push (a POST of up to `SYNC_PUSH_BATCH_SIZE` listings, retried up to
    `SYNC_PUSH_MAX_ATTEMPTS` times). `seqs` holds the desired_seq each listing was sent at."""

    __tablename__ = "deliveries"
    __table_args__ = (sa.Index("ix_deliveries_channel_outcome", "channel_id", "outcome", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    channel_id: str = Field(max_length=36)
    seqs: dict[str, int] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    outcome: str = Field(max_length=12, description="succeeded or failed")
    attempts: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=1000)
    latency_ms: float | None = Field(
        default=None, description="Slowest listing: event time to acknowledgement"
    )
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    replayed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
