"""API models of duplicate candidates and merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DuplicateRead(BaseModel):
    id: str
    customer_a_id: str
    customer_b_id: str
    score: float = Field(description="Match probability of the pair (Fellegi-Sunter model), 0..1")
    evidence: dict[str, float] = Field(
        description="Weight of each field compared, in bits (log2 of m/u at the pair's comparison level, "
        "term-frequency adjusted): positive says same person, negative says different people"
    )
    status: str = Field(description="open, merged, dismissed or superseded")
    created_at: datetime
    updated_at: datetime


class ClusterRead(BaseModel):
    customer_ids: list[str] = Field(
        description="Profiles linked by open candidate pairs, transitively (this one first); merge them in "
        "one operation with POST /v1/customers/{id}/merge, undone in one with POST /v1/merges/{id}/undo"
    )
    pairs: list[DuplicateRead]


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


class LinkageModelRead(BaseModel):
    id: str | None = Field(description="Stored model id; null while the built-in default model is in use")
    trained_at: datetime | None
    prior: float = Field(description="Chance that two profiles taken at random are one person")
    levels: dict[str, list[str]] = Field(description="Comparison levels of each field, lowest first")
    m: dict[str, list[float]] = Field(description="P(level | same person) per field and level")
    u: dict[str, list[float]] = Field(description="P(level | different people) per field and level")
    weights: dict[str, list[float]] = Field(description="log2(m/u) per field and level, in bits")
    stats: dict[str, Any] = Field(description="What the fit saw: profiles, pairs, EM iterations")
    duplicate_threshold: float
    auto_merge_threshold: float
    auto_merge_enabled: bool


class DuplicateJobRead(BaseModel):
    id: str
    kind: Literal["train", "rescan"]
    status: Literal["pending", "running", "succeeded", "failed"]
    progress: str
    processed: int
    total: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
