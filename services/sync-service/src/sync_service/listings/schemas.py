"""API models of listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ListingStatus = Literal["in_sync", "pending", "failed", "drifted", "unpublished"]


class ListingRead(BaseModel):
    channel_id: str
    sku: str
    product_id: str
    status: ListingStatus
    publishable: bool
    desired: dict[str, Any] = Field(description="What the channel should show: title, price, stock…")
    desired_seq: int = Field(description="Grows with every change of the desired state")
    desired_at: datetime = Field(description="When the change that produced the desired state happened")
    acknowledged: dict[str, Any] | None = Field(description="The state the channel last said it holds")
    acknowledged_seq: int
    acknowledged_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
