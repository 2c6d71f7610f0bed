"""Sync jobs (reconcile, resync) and the drift each reconcile found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

JOB_KINDS = ("reconcile", "resync")
JOB_STATUSES = ("queued", "running", "succeeded", "failed")


class SyncJob(SQLModel, table=True):
    """A reconcile or resync of one channel. `active_channel` holds the channel id while the job is queued
    or running and is cleared when it ends: its unique index lets one job at a time run per channel."""

    __tablename__ = "sync_jobs"
    __table_args__ = (sa.Index("ix_sync_jobs_channel", "channel_id", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    channel_id: str = Field(max_length=36)
    kind: str = Field(max_length=10)
    source: str = Field(max_length=20, description="state_endpoint, snapshot, product-service or projection")
    status: str = Field(max_length=10)
    phase: str | None = Field(
        default=None, max_length=10, description="A resync from product-service: pull, then push"
    )
    pulled: int = Field(default=0, description="Products read from product-service's API (a resync's pull)")
    active_channel: str | None = Field(default=None, max_length=36, unique=True)
    total: int = 0
    processed: int = 0
    drifted: int = 0
    healed: int = 0
    skipped: int = 0
    error: str | None = Field(default=None, max_length=2000)
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    heartbeat_at: datetime = Field(
        sa_column=sa.Column(UTCDateTime(), nullable=False),
        description="Last sign of life (start, progress); a job silent for too long is abandoned",
    )


class DriftFinding(SQLModel, table=True):
    """One field of one listing that the channel holds differently from sync-service's state, as the
    latest reconcile of the channel found it (`field` "listing": missing on the channel, or held there
    while sync-service has no such listing)."""

    __tablename__ = "drift_findings"
    __table_args__ = (sa.Index("ix_drift_findings_channel_sku", "channel_id", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(max_length=36)
    sku: str = Field(max_length=100)
    field: str = Field(max_length=50)
    expected: Any = Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=True))
    actual: Any = Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=True))
    job_id: str = Field(max_length=36)
    detected_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
