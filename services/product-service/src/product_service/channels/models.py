"""The projection of sync-service's channel registry (ecom.channels.v1)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class KnownChannel(SQLModel, table=True):
    """A channel sync-service registered; product-service accepts only these codes."""

    __tablename__ = "known_channels"

    code: str = Field(primary_key=True, max_length=50)
    channel_id: str = Field(max_length=36)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=10)
    status: str = Field(max_length=10, description="enabled, paused or retired")
    completeness_threshold: float = 1.0
    safety_buffer: int = 0
    version: int
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
