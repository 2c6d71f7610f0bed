"""API models of deliveries and channel status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

DeliveryOutcome = Literal["succeeded", "failed"]


class DeliveryRead(BaseModel):
    id: str
    channel_id: str
    skus: list[str]
    outcome: DeliveryOutcome
    attempts: int
    status_code: int | None
    error: str | None
    latency_ms: float | None = Field(
        description="Slowest listing of the push: event time to acknowledgement; null when it failed or "
        "delivered no change (a resync pushing states the channel held)"
    )
    started_at: datetime
    finished_at: datetime
    replayed_at: datetime | None


class ReplayResult(BaseModel):
    requeued: list[str] = Field(description="SKUs set back to pending and queued for a push")


class ChannelStatus(BaseModel):
    channel_id: str
    code: str
    listings: int
    in_sync: int
    pending: int
    failed: int
    drifted: int
    unpublished: int
    in_sync_share: float = Field(
        description="in_sync / (listings that should be on the channel); 1 when none"
    )
    latency_p50_ms: float | None = Field(description="Of the latest 1,000 successful pushes")
    latency_p99_ms: float | None
    circuit: Literal["closed", "open", "half_open"] = Field(description="This replica's circuit breaker")


class ChannelSyncStatus(ChannelStatus):
    """A channel's sync status with its name, as `GET /v1/sync-status` lists it."""

    name: str
