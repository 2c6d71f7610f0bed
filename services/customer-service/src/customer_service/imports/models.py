"""Bulk import jobs and their row-level error report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class ImportJob(SQLModel, table=True):
    __tablename__ = "import_jobs"

    id: str = Field(primary_key=True, max_length=36)
    status: str = Field(default="pending", max_length=16, description="pending, running, succeeded, failed")
    format: str = Field(max_length=10)
    actor: str = Field(max_length=200)
    total_rows: int = 0
    processed_rows: int = 0
    created_count: int = 0
    matched_count: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    heartbeat_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=True),
        description="Last progress written by the process running the job (a stale one means it stopped)",
    )
