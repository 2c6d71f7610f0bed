"""Model runs: each refit is a row; one lock row makes sure only one runs at a time."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

REFIT_LOCK = "refit"


class ModelRun(SQLModel, table=True):
    """One refit: `running` -> `succeeded` | `failed` (each a compare-and-set on the status);
    `data_until` is the last day of history the models saw; `summary` holds counts and parameters."""

    __tablename__ = "model_runs"

    id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=20, index=True)
    trigger: str = Field(max_length=20, description="api or schedule")
    actor: str | None = Field(default=None, max_length=200)
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    heartbeat_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    data_until: date
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    error: str | None = Field(default=None, max_length=2000)


class ModelLock(SQLModel, table=True):
    """`run_id` holds the lock while that run works; taken and released by compare-and-set."""

    __tablename__ = "model_locks"

    name: str = Field(primary_key=True, max_length=40)
    run_id: str | None = Field(default=None, max_length=36)
    taken_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
