"""The orders sync-service knows of: a projection of ecom.orders.v1 (ids and status, no PII)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class KnownOrder(SQLModel, table=True):
    __tablename__ = "known_orders"

    order_id: str = Field(primary_key=True, max_length=36)
    order_number: str = Field(max_length=100, index=True)
    customer_id: str = Field(max_length=36)
    channel: str = Field(max_length=50)
    status: str = Field(max_length=20)
    sequence: int = Field(default=0, description="The order's version of the last event applied")
    placed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
