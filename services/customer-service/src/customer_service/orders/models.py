"""Order tables: the order (lines as JSON, amounts as decimal strings) and its status timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    id: str = Field(primary_key=True, max_length=36)
    order_number: str = Field(max_length=100, unique=True)
    customer_id: str = Field(foreign_key="customers.id", max_length=36, index=True)
    channel: str = Field(max_length=50)
    location_id: str | None = Field(default=None, max_length=100)
    currency: str = Field(max_length=3)
    lines: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    subtotal: str = Field(max_length=32)
    discount_total: str = Field(max_length=32)
    total: str = Field(max_length=32)
    status: str = Field(max_length=20, index=True)
    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=100)
    shipping_country: str | None = Field(default=None, max_length=2)
    billing_country: str | None = Field(default=None, max_length=2)
    fingerprint: str = Field(max_length=64)
    shipment_status: str | None = Field(default=None, max_length=20)
    shipment_updated_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    version: int = 1
    placed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class OrderStatusChange(SQLModel, table=True):
    __tablename__ = "order_status_changes"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", max_length=36, index=True)
    status: str = Field(max_length=20)
    previous_status: str | None = Field(default=None, max_length=20)
    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)
    changed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
