"""Segment models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytics_service.channels import ChannelName

ConsentPurpose = Literal["email_marketing", "sms", "personalisation", "analytics", "third_party_sharing"]
Money = float


class SegmentRules(BaseModel):
    """Every rule given must hold (AND). Money in the reporting currency, major units."""

    model_config = ConfigDict(extra="forbid")

    recency_days_min: int | None = Field(default=None, ge=0, le=36500)
    recency_days_max: int | None = Field(default=None, ge=0, le=36500)
    frequency_min: int | None = Field(default=None, ge=0, le=1_000_000)
    frequency_max: int | None = Field(default=None, ge=0, le=1_000_000)
    monetary_min: Money | None = Field(default=None, ge=0, le=1e10)
    monetary_max: Money | None = Field(default=None, ge=0, le=1e10)
    clv_min: Money | None = Field(
        default=None, ge=0, le=1e10, description="Historical CLV (net revenue to date)"
    )
    clv_max: Money | None = Field(default=None, ge=0, le=1e10)
    predicted_clv_min: Money | None = Field(
        default=None,
        ge=0,
        le=1e10,
        description="Predicted CLV: net spend the latest model fit expects over its horizon (GET /v1/clv); "
        "a customer without a prediction does not match",
    )
    predicted_clv_max: Money | None = Field(default=None, ge=0, le=1e10)
    channels: list[ChannelName] | None = Field(
        default=None, max_length=50, description="Acquisition channel in these (any letter case)"
    )
    categories: list[str] | None = Field(default=None, max_length=100, description="Bought in any of these")
    rfm_segments: list[str] | None = Field(default=None, max_length=6)
    consent: list[ConsentPurpose] | None = Field(
        default=None, max_length=5, description="Granted all of these"
    )

    @model_validator(mode="after")
    def _ranges_not_inverted(self) -> SegmentRules:
        inverted = [
            f"{name}_min {low} is above {name}_max {high}"
            for name in ("recency_days", "frequency", "monetary", "clv", "predicted_clv")
            if (low := getattr(self, f"{name}_min")) is not None
            and (high := getattr(self, f"{name}_max")) is not None
            and low > high
        ]
        if inverted:
            raise ValueError(f"{'; '.join(inverted)}: no customer could ever match")
        return self


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str | None = Field(default=None, max_length=500)
    rules: SegmentRules


class SegmentRead(BaseModel):
    name: str
    kind: Literal["rfm", "custom"]
    description: str | None
    rules: SegmentRules | None = None
    members: int = Field(description="Members today")
    created_at: datetime | None = None


class SegmentMember(BaseModel):
    customer_id: str
    recency_days: int
    frequency: int
    monetary: float
    r: int
    f: int
    m: int
    rfm_segment: str


class SegmentMembers(BaseModel):
    segment: str
    as_of: date
    purpose: str | None
    items: list[SegmentMember]
    next_cursor: str | None


class SegmentCount(BaseModel):
    as_of: date
    members: int
