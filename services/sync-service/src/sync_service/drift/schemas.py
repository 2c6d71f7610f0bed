"""API models of drift, snapshots and sync jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sync_service.reference_channel import HeldState

MAX_SNAPSHOT_LISTINGS = 10_000


class SnapshotBody(BaseModel):
    """What a channel holds, posted by the channel itself (for channels without a state endpoint)."""

    model_config = ConfigDict(extra="forbid")

    listings: list[HeldState] = Field(max_length=MAX_SNAPSHOT_LISTINGS)


class JobRead(BaseModel):
    id: str
    channel_id: str
    kind: Literal["reconcile", "resync"]
    source: str = Field(description="state_endpoint, snapshot or listings")
    status: Literal["queued", "running", "succeeded", "failed"]
    total: int = Field(description="Listings of the channel when the job started")
    processed: int
    drifted: int = Field(description="Listings found drifted (reconcile)")
    healed: int = Field(description="Drifted listings put back to pending to be pushed again (policy heal)")
    skipped: int = Field(description="Listings not compared: pending or failed, a push is on its way")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class FindingRead(BaseModel):
    sku: str
    field: str = Field(description="The listing field that differs; `listing`: missing or unknown")
    expected: Any = Field(description="sync-service's state of the field")
    actual: Any = Field(description="What the channel holds")
    job_id: str
    detected_at: datetime
