"""Risk flags raised by the rules over orders and profiles."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class RiskFlag(SQLModel, table=True):
    __tablename__ = "risk_flags"

    id: str = Field(primary_key=True, max_length=36)
    customer_id: str = Field(max_length=36, index=True)
    order_id: str | None = Field(default=None, max_length=36)
    rule: str = Field(max_length=50, index=True)
    reason: str = Field(max_length=500)
    dedupe_key: str = Field(max_length=200, unique=True, description="One flag per rule and subject")
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
