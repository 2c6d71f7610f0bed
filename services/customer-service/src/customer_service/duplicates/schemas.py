"""API models of duplicate candidates and merges."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DuplicateRead(BaseModel):
    id: str
    customer_a_id: str
    customer_b_id: str
    score: float = Field(description="Weighted mean of the field similarities, 0..1")
    evidence: dict[str, float] = Field(description="Similarity per field compared (0..1)")
    status: str = Field(description="open, merged, dismissed or superseded")
    created_at: datetime
    updated_at: datetime


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, max_length=20, description="Profiles to fold into this one")


class MergeRead(BaseModel):
    id: str
    survivor_id: str
    merged_ids: list[str]
    automatic: bool
    score: float | None
    actor: str
    created_at: datetime
    undone_at: datetime | None
