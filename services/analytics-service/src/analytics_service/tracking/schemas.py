"""Track API models: a batch of Segment e-commerce spec events, and the per-event verdict."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from servicekit.bounds import SaneDatetime, date_time_text

MAX_BATCH = 500


class TrackEvent(BaseModel):
    """One storefront event. `properties` follow the Segment e-commerce spec: `sku` on product events,
    `order_id` (and `revenue`) on Order Completed, `query` on Products Searched."""

    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(min_length=1, max_length=100, description="Unique id of the event (idempotency)")
    event: str = Field(min_length=1, max_length=40, description="Page Viewed, Product Added, Identify...")
    timestamp: Annotated[SaneDatetime, BeforeValidator(date_time_text)] = Field(
        description="When it happened: RFC 3339 date-time text with offset (not a number, not a bare date)"
    )
    session_id: str | None = Field(default=None, min_length=1, max_length=100)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=100)
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    channel: str | None = Field(
        default=None, max_length=50, description="Traffic source (utm_source / channel); default direct"
    )
    campaign: str | None = Field(default=None, max_length=100, description="UTM campaign")
    properties: dict[str, Any] = Field(default_factory=dict, max_length=50)


class TrackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: list[Any] = Field(
        max_length=MAX_BATCH, description="Up to 500 events; each is checked on its own (see TrackEvent)"
    )


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in `batch`, from 0")
    message_id: str | None
    errors: list[str]


class TrackResult(BaseModel):
    accepted: int
    rejected: list[RejectedEvent]
