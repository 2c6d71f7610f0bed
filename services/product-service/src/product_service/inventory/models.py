"""Inventory tables: locations, stock per SKU and location, the movement ledger, reservations."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class Location(SQLModel, table=True):
    __tablename__ = "locations"

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=50, unique=True)
    title: str = Field(max_length=200)
    kind: str = Field(max_length=20, description="warehouse or store")
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class StockLevel(SQLModel, table=True):
    """On-hand and reserved of one SKU at one location; available = on_hand - reserved.

    The CHECK constraints are the last line of defence: no write can make available negative."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    sku: str = Field(primary_key=True, max_length=100)
    location_id: str = Field(primary_key=True, foreign_key="locations.id", max_length=36)
    on_hand: int = 0
    reserved: int = 0
    low_stock_threshold: int = 0
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class StockMovement(SQLModel, table=True):
    """The append-only ledger: every change of on-hand or reserved, with its reason."""

    __tablename__ = "stock_movements"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=100, index=True)
    location_id: str = Field(max_length=36)
    kind: str = Field(max_length=20)
    on_hand_delta: int = 0
    reserved_delta: int = 0
    reference: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)
    actor: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


RESERVATION_STATUSES = ("active", "released", "committed", "expired", "backordered", "cancelled")


class Reservation(SQLModel, table=True):
    """Units of one SKU held for an order or a cart. Its status moves only from active (to released,
    committed or expired) or from backordered (to cancelled), each move a compare-and-set."""

    __tablename__ = "reservations"

    id: str = Field(primary_key=True, max_length=36)
    sku: str = Field(max_length=100)
    location_id: str | None = Field(
        default=None, max_length=36, description="The location, when all units are held at one"
    )
    quantity: int
    status: str = Field(max_length=20, description=", ".join(RESERVATION_STATUSES))
    order_id: str | None = Field(default=None, max_length=100, index=True)
    channel: str | None = Field(default=None, max_length=50)
    reference: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True, index=True)
    )
    expected_date: date | None = Field(
        default=None, description="A backorder: when announced inbound deliveries cover it"
    )
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ReservationAllocation(SQLModel, table=True):
    """The units of a reservation held at one location: one row, or several when it is split."""

    __tablename__ = "reservation_allocations"

    reservation_id: str = Field(primary_key=True, foreign_key="reservations.id", max_length=36)
    location_id: str = Field(primary_key=True, max_length=36)
    quantity: int


class ChannelBuffer(SQLModel, table=True):
    """Units of every SKU held back from a channel, so a channel that syncs late does not oversell."""

    __tablename__ = "channel_buffers"

    channel: str = Field(primary_key=True, max_length=50)
    safety_buffer: int = 0


class IncomingStock(SQLModel, table=True):
    """One line of a supplier's announced delivery (sync-service's ecom.inbound.v1): units expected at a
    location on a date, until the delivery is received."""

    __tablename__ = "incoming_stock"

    inbound_id: str = Field(primary_key=True, max_length=36)
    sku: str = Field(primary_key=True, max_length=100, index=True)
    location_id: str = Field(max_length=36)
    quantity: int
    expected_date: date
    status: str = Field(max_length=20, description="open or received")
    supplier: str = Field(max_length=50)
