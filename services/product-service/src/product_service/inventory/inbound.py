"""Suppliers' inbound deliveries (ecom.inbound.v1 from sync-service): incoming stock per location, the
date a backordered order line can expect its stock, and the receipt of a delivery.

Expected dates: the backorders of a SKU are served first come, first served from the open incoming
lots in order of expected date (a backorder that names a location only from lots at that location).
A backorder's date is that of the lot that completes it; one the announced lots cannot cover has none.
Receiving a delivery adds its stock through the inventory's receipt movement (ledger row, stock
event) and closes its lots; backorders keep the date they were given (they stay backordered: nothing
reserves received stock for them automatically)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, build_event, parse_data
from contracts.catalog.inbound import InboundAnnounced, InboundReceived
from contracts.catalog.inventory import StockBackorderExpected
from product_service.catalog import repository as catalog_repository
from product_service.common import utc_now
from product_service.inventory import repository, service
from product_service.inventory.models import IncomingStock, Reservation
from product_service.inventory.schemas import MovementCreate
from servicekit.db import insert_if_absent
from servicekit.events import outbox

log = logging.getLogger(__name__)

ACTOR = "inbound-events"


@dataclass
class _Lot:
    location_id: str
    expected_date: date
    left: int


def _allocate(backorders: Sequence[Reservation], lots: Sequence[IncomingStock]) -> dict[str, date | None]:
    remaining = [_Lot(lot.location_id, lot.expected_date, lot.quantity) for lot in lots]
    dates: dict[str, date | None] = {}
    for backorder in backorders:
        eligible = [lot for lot in remaining if backorder.location_id in (None, lot.location_id)]
        dates[backorder.id] = None
        if sum(lot.left for lot in eligible) < backorder.quantity:
            continue  # not covered: it takes nothing, later backorders may still be
        needed = backorder.quantity
        for lot in eligible:
            take = min(needed, lot.left)
            lot.left -= take
            needed -= take
            if needed == 0:
                dates[backorder.id] = lot.expected_date
                break
    return dates


async def refresh_expected_dates(
    session: AsyncSession, sku: str, *, quiet: str | None = None
) -> dict[str, date | None]:
    """Recompute the expected date of every backorder of `sku`; store and announce those that changed
    (ecom.stock.backorder_expected.v1), except the reservation `quiet` (a backorder being recorded,
    whose own event carries its date). Each store is a compare-and-set on the backorder still being
    backordered. Returns the dates by reservation id."""
    await session.flush()
    backorders = (
        (
            await session.execute(
                select(Reservation)
                .where(col(Reservation.sku) == sku, col(Reservation.status) == "backordered")
                .order_by(col(Reservation.created_at), col(Reservation.id))
            )
        )
        .scalars()
        .all()
    )
    dates = _allocate(backorders, await repository.open_incoming(session, sku))
    for backorder in backorders:
        expected = dates.get(backorder.id)
        if expected == backorder.expected_date:
            continue
        result = await session.execute(
            update(Reservation)
            .where(col(Reservation.id) == backorder.id, col(Reservation.status) == "backordered")
            .values(expected_date=expected, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1 or backorder.id == quiet or backorder.order_id is None:
            continue
        await outbox.add(
            session,
            build_event(
                "ecom.stock.backorder_expected.v1",
                StockBackorderExpected(
                    sku=sku,
                    order_id=backorder.order_id,
                    reservation_id=backorder.id,
                    quantity=backorder.quantity,
                    expected_date=expected,
                ),
                subject=sku,
            ),
        )
    return dates


async def on_inbound_announced(session: AsyncSession, event: CloudEvent) -> None:
    fact = parse_data(event)
    assert isinstance(fact, InboundAnnounced)
    for line in sorted(fact.lines, key=lambda line: line.sku):
        await insert_if_absent(
            session,
            IncomingStock.__table__,  # type: ignore[attr-defined]
            {
                "inbound_id": fact.inbound_id,
                "sku": line.sku,
                "location_id": fact.location_id,
                "quantity": line.quantity,
                "expected_date": fact.expected_date,
                "status": "open",
                "supplier": fact.supplier,
            },
        )
        await refresh_expected_dates(session, line.sku)


async def on_inbound_received(session: AsyncSession, event: CloudEvent) -> None:
    """Close the delivery's lots and add what arrived to on-hand stock (a receipt movement). A line of a
    SKU or location this catalog does not have is logged and skipped: there is no stock row to add to."""
    fact = parse_data(event)
    assert isinstance(fact, InboundReceived)
    await session.execute(
        update(IncomingStock)
        .where(col(IncomingStock.inbound_id) == fact.inbound_id)
        .values(status="received")
        .execution_options(synchronize_session=False)
    )
    known = await catalog_repository.existing_skus(session, [line.sku for line in fact.lines])
    location = await repository.location(session, fact.location_id)
    for line in sorted(fact.lines, key=lambda line: line.sku):
        if line.sku not in known or location is None:
            log.warning(
                "inbound %s: %s at %s is not in the catalog or not a location; %d units not received",
                fact.inbound_id,
                line.sku,
                fact.location_id,
                line.quantity,
            )
            continue
        await service.record_movement(
            session,
            body=MovementCreate(
                kind="receipt",
                sku=line.sku,
                location_id=fact.location_id,
                quantity=line.quantity,
                reference=f"inbound:{fact.inbound_id}",
                reason=f"delivery from {fact.supplier}",
            ),
            actor=ACTOR,
        )
