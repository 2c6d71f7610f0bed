"""API models of drift, snapshots and sync jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sync_service.reference_channel import HeldState

MAX_SNAPSHOT_LISTINGS = 10_000


class SnapshotListing(HeldState):
    """One SKU as the channel holds it."""

    sku: str = Field(min_length=1, max_length=100)


def _each_sku_once(listings: list[SnapshotListing]) -> list[SnapshotListing]:
    """Refuse a snapshot naming a SKU twice: which of its states the channel holds is not ours to pick."""
    first: dict[str, int] = {}
    repeats = []
    for index, item in enumerate(listings):
        earlier = first.setdefault(item.sku, index)
        if earlier != index:
            repeats.append(f"listings[{earlier}] and listings[{index}] both name SKU {item.sku!r}")
    if repeats:
        more = f" (and {len(repeats) - 10} more)" if len(repeats) > 10 else ""
        raise ValueError(f"each SKU may appear once: {'; '.join(repeats[:10])}{more}")
    return listings


class SnapshotBody(BaseModel):
    """What a channel holds, posted by the channel itself (for channels without a state endpoint)."""

    model_config = ConfigDict(extra="forbid")

    listings: Annotated[
        list[SnapshotListing], Field(max_length=MAX_SNAPSHOT_LISTINGS), AfterValidator(_each_sku_once)
    ]


ResyncSource = Literal["product-service", "projection"]


class ResyncBody(BaseModel):
    """How a full resync reads the catalogue."""

    model_config = ConfigDict(extra="forbid")

    source: ResyncSource | None = Field(
        default=None,
        description="product-service: pull the catalogue from product-service's API into the projection, "
        "then push; projection: push from what sync-service holds. Default: product-service when "
        "sync-service has its credential (SYNC_PRODUCT_SERVICE_URL, SYNC_TOKEN_URL, SYNC_CLIENT_ID, "
        "SYNC_CLIENT_SECRET), else projection",
    )


class JobRead(BaseModel):
    id: str
    channel_id: str
    kind: Literal["reconcile", "resync"]
    source: str = Field(
        description="reconcile: state_endpoint or snapshot; resync: product-service (the catalogue pulled "
        "from its API first) or projection (listings of older resyncs: projection)"
    )
    status: Literal["queued", "running", "succeeded", "failed"]
    phase: Literal["pull", "push"] | None = Field(
        description="A resync's phase: pull (reading product-service's catalogue), then push"
    )
    pulled: int = Field(description="Products read from product-service's API (resync from product-service)")
    total: int = Field(description="Listings of the channel when the job started (a resync: its push phase)")
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
