"""Suppliers' inbound deliveries: purchase orders and advance shipping notices, and their receipt."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime

INBOUND_STATUSES = ("announced", "received")


class InboundDelivery(SQLModel, table=True):
    __tablename__ = "inbound_deliveries"
    __table_args__ = (sa.UniqueConstraint("supplier", "supplier_reference"),)

    id: str = Field(primary_key=True, max_length=36)
    supplier: str = Field(max_length=50)
    supplier_reference: str = Field(max_length=100)
    kind: str = Field(max_length=30)
    location_id: str = Field(max_length=36)
    expected_date: date
    lines: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    received_lines: list[dict[str, Any]] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )
    status: str = Field(max_length=20, description=", ".join(INBOUND_STATUSES))
    fingerprint: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    received_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
