"""Reservations: held units that never oversell, split across locations when no one location has them,
and settled (released, committed, expired, cancelled) exactly once.

- Taking stock is a conditional UPDATE of the stock row (`available - quantity >= buffer` in its WHERE).
- Settling is a compare-and-set of the reservation's status (`status = 'active'` in the UPDATE's WHERE);
  only the writer that won it gives the units back or takes them out of on-hand, in the same
  transaction. Every other request, event or sweep that tried finds it settled and changes nothing.
- One lock order for every writer, so concurrent writers wait for each other instead of deadlocking:
  reservation rows (claimed in id order) before stock rows, stock rows in SKU and location order (a
  reservation that may draw from several locations locks all of its SKU's rows first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import build_event
from contracts.catalog.inventory import StockBackordered
from product_service.common import new_id, utc_now
from product_service.inventory import backorders, inbound, ledger, repository
from product_service.inventory.ledger import InsufficientStock
from product_service.inventory.models import Reservation, ReservationAllocation
from product_service.inventory.schemas import AllocationRead, ReservationCreate, ReservationRead
from product_service.inventory.service import require_location, require_sku
from servicekit.db import Database
from servicekit.errors import Conflict, NotFound
from servicekit.events import outbox

log = logging.getLogger(__name__)

Settlement = Literal["released", "committed", "expired"]
SPLIT_ATTEMPTS = 3
SWEEP_INTERVAL_S = 1.0
SWEEP_BATCH = 100

Plan = list[tuple[str, int]]


async def _take(session: AsyncSession, *, sku: str, location_id: str, quantity: int, buffer: int) -> bool:
    return await repository.change_if_available(
        session,
        sku=sku,
        location_id=location_id,
        on_hand_delta=0,
        reserved_delta=quantity,
        keep_available=buffer,
        now=utc_now(),
    )


def split_plan(available: Sequence[tuple[str, int]], quantity: int, buffer: int) -> Plan | None:
    """Units per location, drawing from each in turn what it has above the buffer; None if all together
    do not have `quantity`."""
    plan: Plan = []
    remaining = quantity
    for location_id, units in available:
        share = min(units - buffer, remaining)
        if share > 0:
            plan.append((location_id, share))
            remaining -= share
        if remaining == 0:
            return plan
    return None


async def _allocate(
    session: AsyncSession, *, sku: str, quantity: int, location_id: str | None, buffer: int
) -> Plan | None:
    """Take the units: at `location_id` if given; else at one location that has them all (warehouses
    first, then most available); else split over several. None when there is not enough."""
    if location_id is not None:
        won = await _take(session, sku=sku, location_id=location_id, quantity=quantity, buffer=buffer)
        return [(location_id, quantity)] if won else None
    # Lock the SKU's stock rows in location order first (PostgreSQL; SQLite has one writer at a time):
    # the attempts below may touch several rows, and every writer must take them in one order.
    await repository.lock_stock_rows(session, sku)
    for candidate in await repository.candidate_locations(session, sku, quantity + buffer):
        # The conditional UPDATE decides, not the read above: a concurrent reservation may have won.
        if await _take(session, sku=sku, location_id=candidate, quantity=quantity, buffer=buffer):
            return [(candidate, quantity)]
    for _ in range(SPLIT_ATTEMPTS):
        plan = split_plan(await repository.available_by_location(session, sku), quantity, buffer)
        if plan is None:
            return None
        taken: Plan = []
        for location_id_, share in sorted(plan):
            if not await _take(session, sku=sku, location_id=location_id_, quantity=share, buffer=buffer):
                break
            taken.append((location_id_, share))
        else:
            return plan
        # A concurrent writer took some of it: give back what this attempt took, read again, retry.
        for location_id_, share in taken:
            await repository.change_if_available(
                session,
                sku=sku,
                location_id=location_id_,
                on_hand_delta=0,
                reserved_delta=-share,
                keep_available=0,
                now=utc_now(),
            )
    return None


async def reserve(
    session: AsyncSession,
    *,
    sku: str,
    quantity: int,
    location_id: str | None,
    channel: str | None,
    order_id: str | None = None,
    reference: str | None = None,
    actor: str | None = None,
    expires_at: datetime | None = None,
    buffer: int | None = None,
) -> Reservation | None:
    """Reserve `quantity` (see `_allocate` for where); None when the locations do not have enough
    available stock above the channel's safety buffer (or `buffer`, when given)."""
    if buffer is None:
        buffer = await repository.buffer_of(session, channel)
    plan = await _allocate(session, sku=sku, quantity=quantity, location_id=location_id, buffer=buffer)
    if plan is None:
        return None
    now = utc_now()
    reservation = Reservation(
        id=new_id(),
        sku=sku,
        location_id=plan[0][0] if len(plan) == 1 else None,
        quantity=quantity,
        status="active",
        order_id=order_id,
        channel=channel,
        reference=reference or order_id,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(reservation)
    for location_id_, share in plan:
        session.add(
            ReservationAllocation(reservation_id=reservation.id, location_id=location_id_, quantity=share)
        )
        ledger.record(
            session,
            sku=sku,
            location_id=location_id_,
            kind="reservation",
            reserved_delta=share,
            reference=reservation.reference,
            actor=actor,
        )
    await ledger.emit_stock_changed(
        session,
        sku=sku,
        location_ids=[location_id_ for location_id_, _ in plan],
        movement="reservation",
        reference=reservation.reference,
    )
    return reservation


async def reserve_from_api(session: AsyncSession, *, body: ReservationCreate, actor: str) -> Reservation:
    """Reserve through the API: 404 unknown SKU, 422 unknown location, 409 not enough stock."""
    expires_at = utc_now() + timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    # Why it failed (unknown SKU or location, or too little stock) is only looked up after the attempt.
    reservation = await reserve(
        session,
        sku=body.sku,
        quantity=body.quantity,
        location_id=body.location_id,
        channel=body.channel,
        reference=body.reference,
        actor=actor,
        expires_at=expires_at,
    )
    if reservation is not None:
        return reservation
    await require_sku(session, body.sku)
    if body.location_id is not None:
        await require_location(session, body.location_id)
        raise InsufficientStock(
            f"Not enough available stock of {body.sku} at {body.location_id} to reserve {body.quantity}."
        )
    raise InsufficientStock(
        f"Not enough available stock of {body.sku} to reserve {body.quantity}, "
        "even split over all locations (net of the channel's safety buffer)."
    )


async def get_reservation(session: AsyncSession, *, reservation_id: str) -> Reservation:
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound(f"No reservation {reservation_id}.")
    return reservation


async def to_read(session: AsyncSession, reservation: Reservation) -> ReservationRead:
    read = ReservationRead.model_validate(reservation, from_attributes=True)
    read.allocations = [
        AllocationRead(location_id=row.location_id, quantity=row.quantity)
        for row in await repository.allocations_of(session, reservation.id)
    ]
    return read


async def settle_all(
    session: AsyncSession,
    *,
    reservation_ids: Sequence[str],
    to: Settlement,
    actor: str | None,
    now: datetime | None = None,
) -> list[Reservation]:
    """End active reservations: `released` or `expired` give their units back to available,
    `committed` takes them out of on-hand too (a sale). Returns those this call settled; one no longer
    active (or, for `expired`, not due by `now`) was settled first by another request, event or sweep,
    and is left as it is.

    Each is claimed first by a compare-and-set of its status (in id order), then the stock rows of the
    claimed ones are locked (in SKU and location order) and changed: one lock order for every writer."""
    now = now or utc_now()
    due_by = now if to == "expired" else None
    claimed = [
        reservation_id
        for reservation_id in sorted(reservation_ids)
        if await repository.move_reservation(
            session, reservation_id, expected="active", to=to, now=now, due_by=due_by
        )
    ]
    settled = [reservation for rid in claimed if (reservation := await repository.reservation(session, rid))]
    for sku in sorted({reservation.sku for reservation in settled}):
        await repository.lock_stock_rows(session, sku)
    for reservation in settled:
        await _give_back(session, reservation, ships=to == "committed", expired=to == "expired", actor=actor)
    return settled


async def _give_back(
    session: AsyncSession, reservation: Reservation, *, ships: bool, expired: bool, actor: str | None
) -> None:
    """Move the stock of a reservation just claimed: per allocation, reserved (and when it ships,
    on-hand) go down, with a ledger row; then the stock event."""
    allocations = await repository.allocations_of(session, reservation.id)
    for allocation in allocations:
        given_back = await repository.change_if_available(
            session,
            sku=reservation.sku,
            location_id=allocation.location_id,
            on_hand_delta=-allocation.quantity if ships else 0,
            reserved_delta=-allocation.quantity,
            keep_available=0,
            now=utc_now(),
        )
        if not given_back:  # the ledger no longer matches the stock rows: refuse rather than guess
            raise Conflict(
                f"The reserved stock of {reservation.sku} at {allocation.location_id} is not there."
            )
        ledger.record(
            session,
            sku=reservation.sku,
            location_id=allocation.location_id,
            kind="sale" if ships else "release",
            on_hand_delta=-allocation.quantity if ships else 0,
            reserved_delta=-allocation.quantity,
            reference=reservation.reference,
            reason="reservation expired" if expired else None,
            actor=actor,
        )
    await ledger.emit_stock_changed(
        session,
        sku=reservation.sku,
        location_ids=[allocation.location_id for allocation in allocations],
        movement="sale" if ships else "release",
        reference=reservation.reference,
    )


async def settle(
    session: AsyncSession,
    *,
    reservation_id: str,
    to: Settlement,
    actor: str | None,
    now: datetime | None = None,
) -> Reservation | None:
    """`settle_all` of one reservation: the reservation, or None when it was not active any more."""
    settled = await settle_all(session, reservation_ids=[reservation_id], to=to, actor=actor, now=now)
    return settled[0] if settled else None


async def settle_from_api(
    session: AsyncSession, *, reservation_id: str, to: Literal["released", "committed"], actor: str
) -> Reservation:
    """Release or commit through the API: 404 unknown, 409 when it is not active (any more)."""
    settled = await settle(session, reservation_id=reservation_id, to=to, actor=actor)
    if settled is not None:
        return settled
    current = await repository.reservation(session, reservation_id)
    if current is None:
        raise NotFound(f"No reservation {reservation_id}.")
    raise Conflict(f"The reservation is {current.status}, not active.")


async def cancel_backorder(session: AsyncSession, *, reservation_id: str) -> bool:
    """A backordered line of a cancelled order becomes cancelled (it holds no stock); False if it was
    not backordered any more."""
    return await repository.move_reservation(
        session, reservation_id, expected="backordered", to="cancelled", now=utc_now()
    )


async def record_backorder(
    session: AsyncSession,
    *,
    sku: str,
    quantity: int,
    order_id: str,
    location_id: str | None,
    channel: str | None,
) -> Reservation:
    """An order line that could not be reserved: kept as a backordered reservation, with an event."""
    now = utc_now()
    reservation = Reservation(
        id=new_id(),
        sku=sku,
        location_id=location_id,
        quantity=quantity,
        status="backordered",
        order_id=order_id,
        channel=channel,
        reference=order_id,
        created_at=now,
        updated_at=now,
    )
    session.add(reservation)
    reason = (await backorders.reasons(session, [reservation]))[reservation.id]
    expected = None
    if reason == "insufficient_stock":
        expected = (await inbound.refresh_expected_dates(session, sku, quiet=reservation.id)).get(
            reservation.id
        )
    await outbox.add(
        session,
        build_event(
            "ecom.stock.backordered.v1",
            StockBackordered(
                sku=sku,
                order_id=order_id,
                quantity=quantity,
                location_id=location_id,
                reason=reason,
                reservation_id=reservation.id,
                expected_date=expected,
            ),
            subject=sku,
        ),
    )
    return reservation


async def expire_due(database: Database, *, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Expire active reservations whose time is up, each in its own transaction; how many this call
    expired (one that was committed or released meanwhile is left as it is)."""
    now = now or utc_now()
    async with database.session() as session:
        due = await repository.due_reservations(session, now=now, limit=limit)
    expired = 0
    for reservation_id in due:
        async with database.session() as session:
            if await settle(session, reservation_id=reservation_id, to="expired", actor="expiry", now=now):
                expired += 1
    return expired


async def run_expiry_sweeper(
    database: Database, stop: asyncio.Event, interval: float = SWEEP_INTERVAL_S
) -> None:
    """Expire due reservations every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            await expire_due(database)
        except Exception:
            log.exception("reservation expiry round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def start_expiry_sweeper(app: FastAPI) -> None:
    runtime = app.state.runtime
    runtime.tasks.append(
        asyncio.create_task(run_expiry_sweeper(runtime.database, runtime.stop), name="reservation-expiry")
    )
