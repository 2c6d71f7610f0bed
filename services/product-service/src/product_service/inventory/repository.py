"""Every query of inventory. Stock changes are conditional UPDATEs: the condition is what keeps
available stock from going below zero under concurrent writers, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.inventory.models import (
    ChannelBuffer,
    IncomingStock,
    Location,
    Reservation,
    ReservationAllocation,
    StockLevel,
    StockMovement,
)
from servicekit.db import upsert
from servicekit.http.pagination import after_key
from servicekit.transitions import compare_and_set


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def add_on_hand(
    session: AsyncSession, *, sku: str, location_id: str, quantity: int, now: datetime
) -> None:
    """on_hand += quantity (quantity > 0), creating the stock row if needed (an upsert)."""
    table: Any = StockLevel.__table__  # type: ignore[attr-defined]
    await upsert(
        session,
        table,
        values={
            "sku": sku,
            "location_id": location_id,
            "on_hand": quantity,
            "reserved": 0,
            "low_stock_threshold": 0,
            "updated_at": now,
        },
        key=["sku", "location_id"],
        set_={"on_hand": table.c.on_hand + quantity, "updated_at": now},
    )


async def set_buffer(session: AsyncSession, *, channel: str, safety_buffer: int) -> None:
    """Set a channel's safety buffer, creating its row if needed (an upsert)."""
    table: Any = ChannelBuffer.__table__  # type: ignore[attr-defined]
    await upsert(
        session,
        table,
        values={"channel": channel, "safety_buffer": safety_buffer},
        key=["channel"],
        set_={"safety_buffer": safety_buffer},
    )


async def change_if_available(
    session: AsyncSession,
    *,
    sku: str,
    location_id: str,
    on_hand_delta: int,
    reserved_delta: int,
    keep_available: int,
    now: datetime,
) -> bool:
    """Apply the deltas only if afterwards on_hand - reserved >= keep_available (and on_hand >= reserved)."""
    on_hand, reserved = col(StockLevel.on_hand), col(StockLevel.reserved)
    result = await session.execute(
        update(StockLevel)
        .where(
            col(StockLevel.sku) == sku,
            col(StockLevel.location_id) == location_id,
            (on_hand + on_hand_delta) - (reserved + reserved_delta) >= keep_available,
            reserved + reserved_delta >= 0,
        )
        .values(on_hand=on_hand + on_hand_delta, reserved=reserved + reserved_delta, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def stock_rows(session: AsyncSession, sku: str) -> Sequence[StockLevel]:
    """A SKU's stock rows as the database has them now: stock changes by Core UPDATEs, so rows this
    session loaded before are refreshed, not returned as they were."""
    result = await session.execute(
        select(StockLevel)
        .where(col(StockLevel.sku) == sku)
        .order_by(col(StockLevel.location_id))
        .execution_options(populate_existing=True)
    )
    return result.scalars().all()


async def lock_stock_rows(session: AsyncSession, sku: str) -> None:
    """Lock a SKU's stock rows in location order until the transaction ends (SELECT … FOR UPDATE on
    PostgreSQL; SQLite has no row locks and runs one writer at a time)."""
    await session.execute(
        select(col(StockLevel.location_id))
        .where(col(StockLevel.sku) == sku)
        .order_by(col(StockLevel.location_id))
        .with_for_update()
    )


async def stock_row(session: AsyncSession, sku: str, location_id: str) -> StockLevel | None:
    result = await session.execute(
        select(StockLevel).where(col(StockLevel.sku) == sku, col(StockLevel.location_id) == location_id)
    )
    return result.scalars().first()


async def candidate_locations(session: AsyncSession, sku: str, quantity: int) -> Sequence[str]:
    """Locations that had enough available stock of `sku` when read: warehouses first, then most available."""
    available = col(StockLevel.on_hand) - col(StockLevel.reserved)
    result = await session.execute(
        select(col(StockLevel.location_id))
        .join(Location, col(Location.id) == col(StockLevel.location_id))
        .where(col(StockLevel.sku) == sku, available >= quantity)
        .order_by((col(Location.kind) != "warehouse"), available.desc(), col(StockLevel.location_id))
    )
    return result.scalars().all()


async def available_by_location(session: AsyncSession, sku: str) -> Sequence[tuple[str, int]]:
    """(location, available) of every location holding `sku`, in the order reservations draw from them:
    warehouses first, then most available."""
    available = col(StockLevel.on_hand) - col(StockLevel.reserved)
    result = await session.execute(
        select(col(StockLevel.location_id), available)
        .join(Location, col(Location.id) == col(StockLevel.location_id))
        .where(col(StockLevel.sku) == sku, available > 0)
        .order_by((col(Location.kind) != "warehouse"), available.desc(), col(StockLevel.location_id))
    )
    return [(str(location_id), int(units)) for location_id, units in result.all()]


async def move_reservation(
    session: AsyncSession,
    reservation_id: str,
    *,
    expected: str,
    to: str,
    now: datetime,
    due_by: datetime | None = None,
) -> bool:
    """Compare-and-set of a reservation's status: `expected` -> `to`, and with `due_by` only if it
    expires by then. False when another writer moved it first (or it does not exist)."""
    statement = (
        update(Reservation)
        .where(col(Reservation.id) == reservation_id, col(Reservation.status) == expected)
        .values(status=to, updated_at=now)
    )
    if due_by is not None:
        statement = statement.where(col(Reservation.expires_at) <= due_by)
    return await compare_and_set(session, statement)


async def reservation(session: AsyncSession, reservation_id: str) -> Reservation | None:
    """The reservation as the database has it now (a row loaded earlier in the session is refreshed)."""
    return await session.get(Reservation, reservation_id, populate_existing=True)


async def allocations_of(session: AsyncSession, reservation_id: str) -> Sequence[ReservationAllocation]:
    """Where a reservation's units are held, in location order (the order stock rows are locked in)."""
    result = await session.execute(
        select(ReservationAllocation)
        .where(col(ReservationAllocation.reservation_id) == reservation_id)
        .order_by(col(ReservationAllocation.location_id))
    )
    return result.scalars().all()


async def due_reservations(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[str]:
    """Ids of active reservations whose time is up, oldest deadline first."""
    result = await session.execute(
        select(col(Reservation.id))
        .where(col(Reservation.status) == "active", col(Reservation.expires_at) <= now)
        .order_by(col(Reservation.expires_at))
        .limit(limit)
    )
    return result.scalars().all()


async def set_threshold(
    session: AsyncSession, *, sku: str, location_id: str, threshold: int, now: datetime
) -> bool:
    result = await session.execute(
        update(StockLevel)
        .where(col(StockLevel.sku) == sku, col(StockLevel.location_id) == location_id)
        .values(low_stock_threshold=threshold, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def low_stock(
    session: AsyncSession, *, after: tuple[str, str] | None, limit: int
) -> Sequence[StockLevel]:
    """Rows at or below their threshold in (sku, location) order, after `after`; up to `limit`."""
    available = col(StockLevel.on_hand) - col(StockLevel.reserved)
    query = select(StockLevel).where(
        col(StockLevel.low_stock_threshold) > 0, available <= col(StockLevel.low_stock_threshold)
    )
    if after is not None:
        query = query.where(after_key([col(StockLevel.sku), col(StockLevel.location_id)], after))
    result = await session.execute(
        query.order_by(col(StockLevel.sku), col(StockLevel.location_id)).limit(limit)
    )
    return result.scalars().all()


async def movements(
    session: AsyncSession, *, sku: str, after_id: int | None, limit: int
) -> Sequence[StockMovement]:
    query = (
        select(StockMovement)
        .where(col(StockMovement.sku) == sku)
        .order_by(col(StockMovement.id))
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(col(StockMovement.id) > after_id)
    return (await session.execute(query)).scalars().all()


async def reservations_of_order(session: AsyncSession, order_id: str) -> Sequence[Reservation]:
    """An order's reservations, by SKU then age."""
    result = await session.execute(
        select(Reservation)
        .where(col(Reservation.order_id) == order_id)
        .order_by(col(Reservation.sku), col(Reservation.created_at), col(Reservation.id))
    )
    return result.scalars().all()


async def reservations_page(
    session: AsyncSession, *, order_id: str, after_id: str | None, limit: int
) -> Sequence[Reservation]:
    """Up to limit+1 reservations of an order in id order, after `after_id`."""
    query = select(Reservation).where(col(Reservation.order_id) == order_id)
    if after_id is not None:
        query = query.where(col(Reservation.id) > after_id)
    result = await session.execute(query.order_by(col(Reservation.id)).limit(limit + 1))
    return result.scalars().all()


async def buffer_of(session: AsyncSession, channel: str | None) -> int:
    if channel is None:
        return 0
    row = await session.get(ChannelBuffer, channel)
    return row.safety_buffer if row is not None else 0


async def location(session: AsyncSession, location_id: str) -> Location | None:
    return await session.get(Location, location_id)


async def location_by_code(session: AsyncSession, code: str) -> Location | None:
    result = await session.execute(select(Location).where(col(Location.code) == code))
    return result.scalars().first()


async def locations(session: AsyncSession, *, after_code: str | None, limit: int) -> Sequence[Location]:
    query = select(Location).order_by(col(Location.code)).limit(limit)
    if after_code is not None:
        query = query.where(col(Location.code) > after_code)
    return (await session.execute(query)).scalars().all()


async def total_available(session: AsyncSession, sku: str) -> int:
    value = await session.scalar(
        select(func.coalesce(func.sum(col(StockLevel.on_hand) - col(StockLevel.reserved)), 0)).where(
            col(StockLevel.sku) == sku
        )
    )
    return int(value or 0)


async def open_incoming(session: AsyncSession, sku: str) -> Sequence[IncomingStock]:
    """The SKU's announced inbound lots not received yet, by expected date."""
    query = (
        select(IncomingStock)
        .where(col(IncomingStock.sku) == sku, col(IncomingStock.status) == "open")
        .order_by(col(IncomingStock.expected_date), col(IncomingStock.inbound_id))
    )
    return (await session.execute(query)).scalars().all()


_location_codes: dict[str, str] = {}


async def location_code(session: AsyncSession, location_id: str) -> str | None:
    """A location's code (locations never change their code, so it is remembered per process)."""
    code = _location_codes.get(location_id)
    if code is None:
        location = await session.get(Location, location_id)
        if location is None:
            return None
        code = _location_codes[location_id] = location.code
    return code
