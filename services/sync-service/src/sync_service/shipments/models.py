"""Shipments reported by logistics partners and their checkpoints (the tracking timeline)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (sa.UniqueConstraint("carrier_key", "tracking_number"),)

    id: str = Field(primary_key=True, max_length=36)
    order_id: str = Field(max_length=36, index=True)
    partner: str = Field(max_length=100)
    carrier: str = Field(max_length=100)
    carrier_key: str = Field(max_length=100, description="The carrier, lowercased")
    tracking_number: str = Field(max_length=100)
    status: str = Field(max_length=20, index=True)
    last_occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    estimated_delivery: date | None = None
    promised_delivery_date: date | None = Field(default=None, index=True)
    late_alerted_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ShipmentCheckpoint(SQLModel, table=True):
    """One checkpoint of a shipment. A checkpoint is its shipment, the carrier's code and the moment: the
    code as statuses.code_key reads it (`carrier_code`: `DELIVERED`, `Delivered` and `delivered` are one
    code), while `carrier_status` keeps the code as first sent."""

    __tablename__ = "shipment_checkpoints"
    __table_args__ = (sa.UniqueConstraint("shipment_id", "carrier_code", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=36, index=True)
    status: str = Field(max_length=20)
    carrier_status: str = Field(max_length=100)
    carrier_code: str = Field(max_length=100)
    occurred_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    location: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
