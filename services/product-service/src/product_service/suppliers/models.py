"""Suppliers and what each offers per SKU (supplier SKU, cost, lead time, minimum order, stock)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Supplier(SQLModel, table=True):
    __tablename__ = "suppliers"

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=50, unique=True)
    title: str = Field(max_length=200)
    default_lead_time_days: int = 0
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class SupplierOffer(SQLModel, table=True):
    __tablename__ = "supplier_offers"
    __table_args__ = (
        sa.UniqueConstraint("supplier_id", "supplier_sku", name="uq_supplier_offers_supplier_sku"),
    )

    supplier_id: str = Field(primary_key=True, foreign_key="suppliers.id", max_length=36)
    sku: str = Field(primary_key=True, max_length=100, index=True)
    supplier_sku: str = Field(max_length=100)
    cost_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    lead_time_days: int | None = None
    min_order_quantity: int = 1
    available_quantity: int | None = Field(default=None, description="The supplier's stock, from its feed")
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
