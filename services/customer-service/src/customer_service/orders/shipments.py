"""Shipment updates from logistics partners (ecom.shipment.updated.v1, published by sync-service): the
order shows the latest shipment status, and moves to shipped when a parcel is on its way and to
delivered when every shipment of the order is delivered. Each move goes through `change_status`, so it
is a compare-and-set on the order's status, lands on the timeline and emits order.status_changed like a
move made through the API (product-service ships the reserved stock out on shipped)."""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.shipments import ShipmentUpdated
from customer_service.orders import service
from customer_service.orders.models import Order
from customer_service.orders.schemas import StatusChange

# A carrier may pick up an order that is not paid yet (invoice, cash on delivery): from a 3PL's report,
# placed -> shipped is allowed too. Everything else follows the API's transitions.
SHIPMENT_TRANSITIONS: dict[str, set[str]] = {
    **service.TRANSITIONS,
    "placed": service.TRANSITIONS["placed"] | {"shipped"},
}
ON_ITS_WAY = frozenset({"picked_up", "in_transit", "out_for_delivery", "delivered"})


async def on_shipment_updated(session: AsyncSession, event: CloudEvent) -> None:
    fact = parse_data(event)
    assert isinstance(fact, ShipmentUpdated)
    order = await session.get(Order, fact.order_id, populate_existing=True)
    if order is None:
        return  # not an order of this service
    # The latest report wins; an older one arriving late does not overwrite it.
    await session.execute(
        update(Order)
        .where(
            col(Order.id) == order.id,
            or_(col(Order.shipment_updated_at).is_(None), col(Order.shipment_updated_at) <= fact.occurred_at),
        )
        .values(shipment_status=fact.status, shipment_updated_at=fact.occurred_at)
        .execution_options(synchronize_session=False)
    )
    targets: list[str] = []
    if fact.status in ON_ITS_WAY:
        targets.append("shipped")
    if fact.status == "delivered" and fact.shipments_delivered >= fact.shipments_total:
        targets.append("delivered")
    note = f"{fact.partner}: {fact.carrier} {fact.carrier_status}"[:500]
    for target in targets:
        order = await service.get(session, order_id=order.id, fresh=True)
        if order.status == target or target not in SHIPMENT_TRANSITIONS[order.status]:
            continue  # already there, past it, or the order was cancelled: nothing to move
        # A concurrent change makes change_status re-decide on the new status; if the move is no longer
        # possible it raises Conflict and the consumer retries, finding it skipped above.
        order = await service.change_status(
            session,
            order=order,
            change=StatusChange(
                status=target,
                carrier=fact.carrier,
                tracking_number=fact.tracking_number,
                note=note,
            ),
            transitions=SHIPMENT_TRANSITIONS,
        )
