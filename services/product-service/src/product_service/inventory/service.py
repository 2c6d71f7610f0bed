"""Inventory rules: locations, stock movements, stock views, buffers and low-stock (reservations are in
`reservations`).

Every change of stock is one conditional UPDATE of the stock row (never read-modify-write), one
ledger row and one ecom.stock.changed.v1 event, all in the caller's transaction. A movement that
touches two stock rows (a transfer) locks them in location order, so two transfers in opposite
directions cannot deadlock."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from product_service.catalog import repository as catalog_repository
from product_service.common import new_id, utc_now
from product_service.inventory import ledger, repository
from product_service.inventory.ledger import InsufficientStock
from product_service.inventory.models import ChannelBuffer, Location
from product_service.inventory.schemas import (
    IncomingRead,
    LocationCreate,
    LocationStock,
    MovementCreate,
    StockRead,
)
from servicekit.errors import Conflict, NotFound, UnprocessableEntity


async def create_location(session: AsyncSession, *, body: LocationCreate) -> Location:
    if await repository.location_by_code(session, body.code) is not None:
        raise Conflict(f"A location with code {body.code!r} exists.")
    location = Location(id=new_id(), code=body.code, title=body.title, kind=body.kind, created_at=utc_now())
    session.add(location)
    await session.flush()
    return location


async def require_sku(session: AsyncSession, sku: str) -> None:
    if await catalog_repository.variant(session, sku) is None:
        raise NotFound(f"No variant with SKU {sku}.")


async def require_location(session: AsyncSession, location_id: str) -> None:
    if await repository.location(session, location_id) is None:
        raise UnprocessableEntity(f"No location {location_id}.")


async def record_movement(session: AsyncSession, *, body: MovementCreate, actor: str | None) -> None:
    """Receipt, sale, return, adjustment or transfer; 409 when it would take available below zero."""
    await require_sku(session, body.sku)
    await require_location(session, body.location_id)
    if body.to_location_id is not None:
        await require_location(session, body.to_location_id)
    now = utc_now()
    adds = body.kind in ("receipt", "return") or (body.kind == "adjustment" and body.quantity > 0)
    quantity = abs(body.quantity)
    # (location, on-hand delta, ledger kind) in location order: the order rows are locked in.
    changes = [(body.location_id, quantity if adds else -quantity, body.kind)]
    if body.to_location_id is not None:
        changes.append((body.to_location_id, quantity, "transfer"))
    for location_id, delta, kind in sorted(changes):
        if delta > 0:
            await repository.add_on_hand(
                session, sku=body.sku, location_id=location_id, quantity=delta, now=now
            )
        elif not await repository.change_if_available(
            session,
            sku=body.sku,
            location_id=location_id,
            on_hand_delta=delta,
            reserved_delta=0,
            keep_available=0,
            now=now,
        ):
            # Raising rolls back the whole transaction, a destination already credited included.
            raise InsufficientStock(
                f"Not enough available stock of {body.sku} at {location_id} for {body.kind} of {quantity}."
            )
        ledger.record(
            session,
            sku=body.sku,
            location_id=location_id,
            kind=kind,
            on_hand_delta=delta,
            reference=body.reference,
            reason=body.reason,
            actor=actor,
        )
    await ledger.emit_stock_changed(
        session,
        sku=body.sku,
        location_ids=[location_id for location_id, _, _ in changes],
        movement=body.kind,
        reference=body.reference,
    )


async def stock_of(session: AsyncSession, *, sku: str, channel: str | None) -> StockRead:
    """On-hand, reserved and available per location and in total; with a channel, net of its buffer."""
    rows = await repository.stock_rows(session, sku)
    if not rows:
        await require_sku(session, sku)
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
    incoming = [
        IncomingRead(
            inbound_id=lot.inbound_id,
            location_id=lot.location_id,
            quantity=lot.quantity,
            expected_date=lot.expected_date,
            supplier=lot.supplier,
        )
        for lot in await repository.open_incoming(session, sku)
    ]
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
        incoming=incoming,
    )


async def set_threshold(session: AsyncSession, *, sku: str, location_id: str, threshold: int) -> None:
    if not await repository.set_threshold(
        session, sku=sku, location_id=location_id, threshold=threshold, now=utc_now()
    ):
        raise NotFound(f"No stock of {sku} at {location_id}; receive some first.")


async def set_buffer(session: AsyncSession, *, channel: str, safety_buffer: int) -> ChannelBuffer:
    """Set the units of every SKU held back from `channel`; concurrent settings all succeed, the last
    one stays."""
    await repository.set_buffer(session, channel=channel, safety_buffer=safety_buffer)
    return ChannelBuffer(channel=channel, safety_buffer=safety_buffer)
