"""Candidate duplicate pairs and merges (with what undo needs to restore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class DuplicateCandidate(SQLModel, table=True):
    __tablename__ = "duplicate_candidates"
    __table_args__ = (sa.UniqueConstraint("customer_a_id", "customer_b_id", name="uq_duplicate_pair"),)

    id: str = Field(primary_key=True, max_length=36)
    customer_a_id: str = Field(max_length=36, index=True)
    customer_b_id: str = Field(max_length=36, index=True)
    score: float = Field(index=True)
    evidence: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    status: str = Field(default="open", max_length=16, index=True)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Merge(SQLModel, table=True):
    """Lineage of one merge. `snapshot` holds the survivor's state before it (its PII still sealed
    under the survivor's own data key) and the rows moved, so the merge can be undone."""

    __tablename__ = "merges"

    id: str = Field(primary_key=True, max_length=36)
    survivor_id: str = Field(max_length=36, index=True)
    merged_ids: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    automatic: bool = False
    score: float | None = None
    snapshot: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    survivor_version: int
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    undone_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))


class LinkageModelRecord(SQLModel, table=True):
    """A fitted linkage model (m/u per level, match prior, term frequencies); the newest is in use."""

    __tablename__ = "linkage_models"

    id: str = Field(primary_key=True, max_length=36)
    params: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    job_id: str | None = Field(default=None, max_length=36)
    trained_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class DuplicateJob(SQLModel, table=True):
    """A background job of duplicate detection: model training or a full re-scan of the base."""

    __tablename__ = "duplicate_jobs"

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=16, description="train or rescan")
    status: str = Field(default="pending", max_length=16, index=True)
    progress: str = Field(default="", max_length=200)
    processed: int = 0
    total: int = 0
    result: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    error: str | None = Field(default=None, max_length=1000)
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    heartbeat_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
