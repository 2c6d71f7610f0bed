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
    on_error: str = Field(default="refuse", max_length=16, description="refuse, skip_row or drop_field")
    skipped_count: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    heartbeat_at: datetime | None = Field(
        default=None,
        sa_column=sa.Column(UTCDateTime(), nullable=True),
        description="Last progress written by the process running the job (a stale one means it stopped)",
    )


class ImportRow(SQLModel, table=True):
    """What became of one row of an import: the customer it created, matched or was merged into, or
    why it was skipped or refused (with the row as sent, to fix and upload again)."""

    __tablename__ = "import_rows"
    __table_args__ = (sa.UniqueConstraint("job_id", "row", name="uq_import_rows_job_row"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=36, index=True)
    row: int
    outcome: str = Field(max_length=16, description="created, matched, merged, skipped or refused")
    customer_id: str | None = Field(default=None, max_length=36)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    raw: dict[str, Any] | None = Field(
        default=None,
        sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=True),
        description="The row as sent, if not imported whole",
    )
