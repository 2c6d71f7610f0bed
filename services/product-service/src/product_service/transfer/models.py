"""Import jobs and their row-level error report."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class ImportJob(SQLModel, table=True):
    __tablename__ = "product_import_jobs"

    id: str = Field(primary_key=True, max_length=36)
    format: str = Field(max_length=10)
    status: str = Field(max_length=20, description="queued, running, succeeded, failed")
    rows_processed: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_failed: int = 0
    bytes_total: int = Field(default=0, sa_type=sa.BigInteger)
    error: str | None = Field(default=None, max_length=2000)
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    heartbeat_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(UTCDateTime()),
        description="Last sign of life of the process running the job (start, each batch, every few seconds)",
    )


class ImportRowError(SQLModel, table=True):
    __tablename__ = "product_import_row_errors"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=36, index=True)
    row_number: int = Field(description="1-based data row (the CSV header is not counted)")
    sku: str | None = Field(default=None, max_length=200)
    message: str = Field(max_length=2000)
