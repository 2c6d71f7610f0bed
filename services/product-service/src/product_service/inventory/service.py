"""Inventory rules: the ledger, reservations that never oversell, buffers and low-stock.

Every change of stock is one conditional UPDATE of the stock row (never read-modify-write), one
ledger row and one ecom.stock.changed.v1 event, all in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import build_event
from contracts.catalog.inventory import LocationStock as EventLocationStock
from contracts.catalog.inventory import MovementKind, StockBackordered, StockChanged
from product_service.catalog import repository as catalog_repository
from product_service.common import new_id, utc_now
from product_service.inventory import backorders, repository
from product_service.inventory.models import ChannelBuffer, Location, Reservation, StockMovement
from product_service.inventory.schemas import (
    LocationCreate,
    LocationStock,
    MovementCreate,
    ReservationCreate,
    StockRead,
)
from servicekit.errors import Conflict, NotFound, UnprocessableEntity
from servicekit.events import outbox


class InsufficientStock(Conflict):
    title = "Insufficient Stock"


async def create_location(session: AsyncSession, *, body: LocationCreate) -> Location:
    if await repository.location_by_code(session, body.code) is not None:
        raise Conflict(f"A location with code {body.code!r} exists.")
    location = Location(id=new_id(), code=body.code, title=body.title, kind=body.kind, created_at=utc_now())
    session.add(location)
    await session.flush()
    return location


async def _require_sku(session: AsyncSession, sku: str) -> None:
    if await catalog_repository.variant(session, sku) is None:
        raise NotFound(f"No variant with SKU {sku}.")


async def _require_location(session: AsyncSession, location_id: str) -> None:
    if await repository.location(session, location_id) is None:
        raise UnprocessableEntity(f"No location {location_id}.")


def _ledger(
    session: AsyncSession,
    *,
    sku: str,
    location_id: str,
    kind: str,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reference: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> None:
    session.add(
        StockMovement(
            sku=sku,
            location_id=location_id,
            kind=kind,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            reference=reference,
            reason=reason,
            actor=actor,
            created_at=utc_now(),
        )
    )


async def _emit_stock_changed(
    session: AsyncSession,
    *,
    sku: str,
    location_ids: Sequence[str],
    movement: MovementKind,
    reference: str | None,
) -> None:
    await session.flush()
    rows = [row for row in await repository.stock_rows(session, sku) if row.location_id in set(location_ids)]
    event = StockChanged(
        sku=sku,
        movement=movement,
        reference=reference,
        locations=[
            EventLocationStock(
                location_id=row.location_id,
                on_hand=row.on_hand,
                reserved=row.reserved,
                available=row.on_hand - row.reserved,
            )
            for row in rows
        ],
        total_available=await repository.total_available(session, sku),
    )
    await outbox.add(session, build_event("ecom.stock.changed.v1", event, subject=sku))


async def record_movement(session: AsyncSession, *, body: MovementCreate, actor: str | None) -> None:
    """Receipt, sale, return, adjustment or transfer; 409 when it would take available below zero."""
    await _require_sku(session, body.sku)
    await _require_location(session, body.location_id)
    now = utc_now()
    touched = [body.location_id]
    if body.kind in ("receipt", "return") or (body.kind == "adjustment" and body.quantity > 0):
        await repository.add_on_hand(
            session, sku=body.sku, location_id=body.location_id, quantity=body.quantity, now=now
        )
        _ledger(
            session,
            sku=body.sku,
            location_id=body.location_id,
            kind=body.kind,
            on_hand_delta=body.quantity,
            reference=body.reference,
            reason=body.reason,
            actor=actor,
        )
    else:
        quantity = abs(body.quantity)
        if body.to_location_id is not None:
            await _require_location(session, body.to_location_id)
        taken = await repository.change_if_available(
            session,
            sku=body.sku,
            location_id=body.location_id,
            on_hand_delta=-quantity,
            reserved_delta=0,
            keep_available=0,
            now=now,
        )
        if not taken:
            raise InsufficientStock(
                f"Not enough available stock of {body.sku} at {body.location_id} "
                f"for {body.kind} of {quantity}."
            )
        _ledger(
            session,
            sku=body.sku,
            location_id=body.location_id,
            kind=body.kind,
            on_hand_delta=-quantity,
            reference=body.reference,
            reason=body.reason,
            actor=actor,
        )
        if body.to_location_id is not None:
            await repository.add_on_hand(
                session, sku=body.sku, location_id=body.to_location_id, quantity=quantity, now=now
            )
            _ledger(
                session,
                sku=body.sku,
                location_id=body.to_location_id,
                kind="transfer",
                on_hand_delta=quantity,
                reference=body.reference,
                reason=body.reason,
                actor=actor,
            )
            touched.append(body.to_location_id)
    await _emit_stock_changed(
        session, sku=body.sku, location_ids=touched, movement=body.kind, reference=body.reference
    )


async def _try_reserve(
    session: AsyncSession, *, sku: str, location_id: str, quantity: int, buffer: int
) -> bool:
    return await repository.change_if_available(
        session,
        sku=sku,
        location_id=location_id,
        on_hand_delta=0,
        reserved_delta=quantity,
        keep_available=buffer,
        now=utc_now(),
    )


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
) -> Reservation | None:
    """Reserve `quantity` at `location_id`, or at the first location that has it (warehouses first).
    None when no location has enough available stock above the channel's safety buffer."""
    buffer = await repository.buffer_of(session, channel)
    if location_id is not None:
        candidates: Sequence[str] = [location_id]
    else:
        candidates = await repository.candidate_locations(session, sku, quantity + buffer)
    chosen = None
    for candidate in candidates:
        # The conditional UPDATE decides, not the read above: a concurrent reservation may have won.
        if await _try_reserve(session, sku=sku, location_id=candidate, quantity=quantity, buffer=buffer):
            chosen = candidate
            break
    if chosen is None:
        return None
    now = utc_now()
    reservation = Reservation(
        id=new_id(),
        sku=sku,
        location_id=chosen,
        quantity=quantity,
        status="active",
        order_id=order_id,
        channel=channel,
        reference=reference or order_id,
        created_at=now,
        updated_at=now,
    )
    session.add(reservation)
    _ledger(
        session,
        sku=sku,
        location_id=chosen,
        kind="reservation",
        reserved_delta=quantity,
        reference=reservation.reference,
        actor=actor,
    )
    await _emit_stock_changed(
        session, sku=sku, location_ids=[chosen], movement="reservation", reference=reservation.reference
    )
    return reservation


async def reserve_from_api(session: AsyncSession, *, body: ReservationCreate, actor: str) -> Reservation:
    """Reserve through the API: 404 unknown SKU, 422 unknown location, 409 not enough stock."""
    # Why it failed (unknown SKU or location, or too little stock) is only looked up after the attempt.
    reservation = await reserve(
        session,
        sku=body.sku,
        quantity=body.quantity,
        location_id=body.location_id,
        channel=body.channel,
        reference=body.reference,
        actor=actor,
    )
    if reservation is not None:
        return reservation
    await _require_sku(session, body.sku)
    if body.location_id is not None:
        await _require_location(session, body.location_id)
    raise InsufficientStock(f"Not enough available stock of {body.sku} to reserve {body.quantity}.")


async def get_reservation(session: AsyncSession, *, reservation_id: str) -> Reservation:
    reservation = await session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound(f"No reservation {reservation_id}.")
    return reservation


async def release(
    session: AsyncSession, *, reservation: Reservation, actor: str | None = None
) -> Reservation:
    """Give the reserved units back to available; only an active reservation can be released."""
    return await _settle(session, reservation=reservation, ships=False, actor=actor)


async def commit(session: AsyncSession, *, reservation: Reservation, actor: str | None = None) -> Reservation:
    """The reserved units leave the location (shipped or sold): on_hand and reserved both go down."""
    return await _settle(session, reservation=reservation, ships=True, actor=actor)


async def _settle(
    session: AsyncSession,
    *,
    reservation: Reservation,
    ships: bool,
    actor: str | None,
) -> Reservation:
    """End an active reservation: its units stop being reserved and, when `ships`, leave on_hand too
    (a sale); otherwise they are available again (a release)."""
    if reservation.status != "active" or reservation.location_id is None:
        raise Conflict(f"The reservation is {reservation.status}, not active.")
    on_hand_delta = -reservation.quantity if ships else 0
    movement: MovementKind = "sale" if ships else "release"
    done = await repository.change_if_available(
        session,
        sku=reservation.sku,
        location_id=reservation.location_id,
        on_hand_delta=on_hand_delta,
        reserved_delta=-reservation.quantity,
        keep_available=0,
        now=utc_now(),
    )
    if not done:
        verb = "commit" if ships else "release"
        raise Conflict(f"The reserved stock is no longer there to {verb}.")
    reservation.status = "committed" if ships else "released"
    reservation.updated_at = utc_now()
    _ledger(
        session,
        sku=reservation.sku,
        location_id=reservation.location_id,
        kind=movement,
        on_hand_delta=on_hand_delta,
        reserved_delta=-reservation.quantity,
        reference=reservation.reference,
        actor=actor,
    )
    await _emit_stock_changed(
        session,
        sku=reservation.sku,
        location_ids=[reservation.location_id],
        movement=movement,
        reference=reservation.reference,
    )
    return reservation


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
    await outbox.add(
        session,
        build_event(
            "ecom.stock.backordered.v1",
            StockBackordered(
                sku=sku, order_id=order_id, quantity=quantity, location_id=location_id, reason=reason
            ),
            subject=sku,
        ),
    )
    return reservation


async def stock_of(session: AsyncSession, *, sku: str, channel: str | None) -> StockRead:
    """On-hand, reserved and available per location and in total; with a channel, net of its buffer."""
    rows = await repository.stock_rows(session, sku)
    if not rows:
        await _require_sku(session, sku)
    buffer = await repository.buffer_of(session, channel) if channel else None
    locations = []
    for row in rows:
        available = row.on_hand - row.reserved
        locations.append(
            LocationStock(
                location_id=row.location_id,
                on_hand=row.on_hand,
                reserved=row.reserved,
                available=available,
                available_for_channel=max(0, available - buffer) if buffer is not None else None,
                low_stock_threshold=row.low_stock_threshold,
                low_stock=row.low_stock_threshold > 0 and available <= row.low_stock_threshold,
            )
        )
    available = sum(item.available for item in locations)
    return StockRead(
        sku=sku,
        channel=channel,
        on_hand=sum(item.on_hand for item in locations),
        reserved=sum(item.reserved for item in locations),
        available=available,
        available_for_channel=(
            sum(item.available_for_channel or 0 for item in locations) if buffer is not None else None
        ),
        locations=locations,
    )


async def set_threshold(session: AsyncSession, *, sku: str, location_id: str, threshold: int) -> None:
    if not await repository.set_threshold(
        session, sku=sku, location_id=location_id, threshold=threshold, now=utc_now()
    ):
        raise NotFound(f"No stock of {sku} at {location_id}; receive some first.")


async def set_buffer(session: AsyncSession, *, channel: str, safety_buffer: int) -> ChannelBuffer:
    row = await session.get(ChannelBuffer, channel)
    if row is None:
        row = ChannelBuffer(channel=channel, safety_buffer=safety_buffer)
        session.add(row)
    else:
        row.safety_buffer = safety_buffer
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("The buffer was set concurrently; retry.") from None
    return row
