"""Stock effects of order events (ecom.orders.v1): reserve on placed, release on cancelled, commit on shipped.

- Web and marketplace orders: each line is reserved at the order's `location_id` if it names one,
  otherwise at the first location with enough available stock net of the channel's safety buffer
  (warehouses before stores). A line no location can cover is recorded as a backordered reservation
  and announced with ecom.stock.backordered.v1; nothing is reserved for it, stock never goes negative.
- In-store sales (channel "pos" with a `location_id`) are committed at once when placed: the goods
  have left the store, so the units go out of on-hand immediately (no channel buffer applies: it keeps
  units back from online channels, not from a till). A store that sold more than its record held has
  its record emptied and the shortfall written to the ledger (kind `pos_shortfall`); an in-store sale
  is never a backorder. A later shipped event finds no active reservation and changes nothing.
- Cancelled releases the order's active reservations (backordered lines are marked cancelled);
  shipped commits them. Other statuses do not touch stock. Each of these is a compare-and-set, so a
  reservation released or committed through the API (or expired) meanwhile is not settled twice.
The consumer's inbox makes every event's effect happen once.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, parse_data
from contracts.catalog.orders import OrderLine, OrderPlaced, OrderStatusChanged
from product_service.inventory import ledger, repository, reservations

log = logging.getLogger(__name__)

POS_CHANNEL = "pos"
ACTOR = "order-events"
SOLD_ATTEMPTS = 3


async def on_order_placed(session: AsyncSession, event: CloudEvent) -> None:
    """Reserve every line of a new order (POS sales are committed at once); lines in SKU order, the
    order their stock rows are locked in."""
    order = parse_data(event)
    assert isinstance(order, OrderPlaced)
    for line in sorted(order.lines, key=lambda line: line.sku):
        if order.channel == POS_CHANNEL and order.location_id is not None:
            await _sold_in_store(session, order, line, order.location_id)
            continue
        reservation = await reservations.reserve(
            session,
            sku=line.sku,
            quantity=line.quantity,
            location_id=order.location_id,
            channel=order.channel,
            order_id=order.order_id,
            actor=ACTOR,
        )
        if reservation is None:
            await reservations.record_backorder(
                session,
                sku=line.sku,
                quantity=line.quantity,
                order_id=order.order_id,
                location_id=order.location_id,
                channel=order.channel,
            )


async def _sold_in_store(session: AsyncSession, order: OrderPlaced, line: OrderLine, store: str) -> None:
    """Take the line's units out of the store at once (reserved and committed). When the store's record
    holds fewer available units than were sold, what it holds is taken (read again and retried if a
    concurrent reservation took some meanwhile) and the rest is a `pos_shortfall` ledger row."""
    taken = 0
    for _ in range(SOLD_ATTEMPTS):
        held = dict(await repository.available_by_location(session, line.sku)).get(store, 0)
        want = min(line.quantity, held)
        if want <= 0:
            break
        reservation = await reservations.reserve(
            session,
            sku=line.sku,
            quantity=want,
            location_id=store,
            channel=order.channel,
            order_id=order.order_id,
            actor=ACTOR,
            buffer=0,
        )
        if reservation is not None:
            await reservations.settle(session, reservation_id=reservation.id, to="committed", actor=ACTOR)
            taken = want
            break
    shortfall = line.quantity - taken
    if shortfall > 0:
        log.warning(
            "order %s sold %d of %s at store %s, %d more than its stock record held",
            order.order_id,
            line.quantity,
            line.sku,
            store,
            shortfall,
        )
        ledger.record(
            session,
            sku=line.sku,
            location_id=store,
            kind="pos_shortfall",
            reference=order.order_id,
            reason=f"sold {line.quantity} in store, {shortfall} more than the stock record held",
            actor=ACTOR,
        )


async def on_order_status_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Release the order's active reservations when cancelled, commit them when shipped. Each is a
    compare-and-set: a reservation settled meanwhile (released or committed through the API, expired)
    is left as it is."""
    change = parse_data(event)
    assert isinstance(change, OrderStatusChanged)
    if change.status not in ("cancelled", "shipped"):
        return
    held = await repository.reservations_of_order(session, change.order_id)
    await reservations.settle_all(
        session,
        reservation_ids=[r.id for r in held if r.status == "active"],
        to="released" if change.status == "cancelled" else "committed",
        actor=ACTOR,
    )
    if change.status == "cancelled":
        for reservation in held:
            if reservation.status == "backordered":
                await reservations.cancel_backorder(session, reservation_id=reservation.id)
