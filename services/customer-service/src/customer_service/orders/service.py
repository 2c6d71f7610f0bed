"""Orders: placed idempotently by order number, status changes with a timeline, events for inventory."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event, uuid7
from contracts.catalog.orders import OrderLine, OrderPlaced, OrderStatusChanged
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.orders.metrics import ORDER_REVENUE, ORDERS
from customer_service.orders.models import Order, OrderStatusChange
from customer_service.orders.schemas import OrderCreate, OrderRead, StatusChange, TimelineEntry
from customer_service.risk import service as risk
from servicekit.bounds import MAX_AMOUNT
from servicekit.errors import Conflict, NotFound
from servicekit.events import outbox
from servicekit.http.idempotency import fingerprint
from servicekit.metrics import increment_on_commit
from servicekit.transitions import compare_and_set

CENT = Decimal("0.01")
CHANGE_ATTEMPTS = 3

TRANSITIONS: dict[str, set[str]] = {
    "placed": {"paid", "cancelled"},
    "paid": {"shipped", "cancelled", "refunded"},
    "shipped": {"delivered", "refunded"},
    "delivered": {"refunded"},
    "cancelled": set(),
    "refunded": set(),
}


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _lines(order: Order) -> list[OrderLine]:
    """The lines as events carry them (what was ordered; a backorder mark stays in this service)."""
    fields = OrderLine.model_fields
    return [OrderLine.model_validate({k: v for k, v in line.items() if k in fields}) for line in order.lines]


def _totals(body: OrderCreate) -> tuple[Decimal, Decimal]:
    """(subtotal, total) from the lines; 422 naming the field when the sent totals disagree."""
    for i, line in enumerate(body.lines):
        if line.currency != body.currency:
            raise customers.unprocessable(
                f"body.lines.{i}.currency", f"The line's currency must be the order's ({body.currency})."
            )
    subtotal = sum((line.unit_price * line.quantity for line in body.lines), Decimal("0")).quantize(CENT)
    if subtotal > MAX_AMOUNT:
        # What every consumer stores as a money amount (analytics: minor units in a 64-bit column).
        raise customers.unprocessable(
            "body.lines", f"The lines add up to {subtotal}, more than an order can hold ({MAX_AMOUNT})."
        )
    if body.subtotal is not None and body.subtotal.quantize(CENT) != subtotal:
        raise customers.unprocessable("body.subtotal", f"The lines add up to {subtotal}.")
    if body.discount_total > subtotal:
        raise customers.unprocessable("body.discount_total", "The discount exceeds the subtotal.")
    total = (subtotal - body.discount_total).quantize(CENT)
    if body.total is not None and body.total.quantize(CENT) != total:
        raise customers.unprocessable("body.total", f"subtotal - discount_total is {total}.")
    return subtotal, total


async def by_number(session: AsyncSession, order_number: str) -> Order | None:
    return (
        await session.execute(select(Order).where(col(Order.order_number) == order_number))
    ).scalar_one_or_none()


async def place(session: AsyncSession, context: CustomerContext, *, body: OrderCreate) -> tuple[Order, bool]:
    """Place an order, or return the one already placed under its number (same request); returns
    (order, created). A different request under a used number is 409. Emits order.placed."""
    request_fingerprint = fingerprint(body.model_dump(mode="json"))
    existing = await by_number(session, body.order_number)
    if existing is not None:
        return _same_or_conflict(existing, request_fingerprint), False
    if (body.customer_id is None) == (body.customer is None):
        raise customers.unprocessable("body.customer_id", "Give either customer_id or customer identifiers.")
    subtotal, total = _totals(body)
    norm_countries = {
        name: value.upper() if value else None
        for name, value in (("shipping", body.shipping_country), ("billing", body.billing_country))
    }
    if body.customer is not None:
        customer, _ = await customers.identify(session, context, request=body.customer)
        if customer.status == "merged" and customer.merged_into_id:
            customer = await customers.get(session, customer_id=customer.merged_into_id)
    else:
        assert body.customer_id is not None
        customer = await customers.get(session, customer_id=body.customer_id)
        if customer.status != "active":
            raise Conflict(f"Customer {customer.id} was merged into {customer.merged_into_id}.")
    stamp = customers.now()
    order = Order(
        id=str(uuid7()),
        order_number=body.order_number,
        customer_id=customer.id,
        channel=body.channel,
        location_id=body.location_id,
        currency=body.currency,
        lines=[
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": _money(line.unit_price),
                "currency": line.currency,
            }
            for line in body.lines
        ],
        subtotal=str(subtotal),
        discount_total=_money(body.discount_total),
        total=str(total),
        status="placed",
        shipping_country=norm_countries["shipping"],
        billing_country=norm_countries["billing"],
        fingerprint=request_fingerprint,
        placed_at=body.placed_at or stamp,
        updated_at=stamp,
    )
    session.add(order)
    session.add(OrderStatusChange(order_id=order.id, status="placed", changed_at=order.placed_at))
    try:
        await session.flush()
    except IntegrityError:
        # The same order number was placed concurrently: answer with that one.
        await session.rollback()
        existing = await by_number(session, body.order_number)
        if existing is None:
            raise
        return _same_or_conflict(existing, request_fingerprint), False
    await outbox.add(
        session,
        build_event(
            "ecom.order.placed.v1",
            OrderPlaced(
                order_id=order.id,
                order_number=order.order_number,
                customer_id=order.customer_id,
                channel=order.channel,
                location_id=order.location_id,
                currency=order.currency,
                lines=_lines(order),
                subtotal=Decimal(order.subtotal),
                discount_total=Decimal(order.discount_total),
                total=Decimal(order.total),
                placed_at=order.placed_at,
            ),
            subject=order.id,
            sequence=order.version,
        ),
    )
    await risk.evaluate_order(session, order=order)
    increment_on_commit(session, ORDERS.labels(order.channel))
    increment_on_commit(session, ORDER_REVENUE.labels(order.channel, order.currency), float(order.total))
    return order, True


def _same_or_conflict(existing: Order, request_fingerprint: str) -> Order:
    if existing.fingerprint != request_fingerprint:
        raise Conflict(f"Order number {existing.order_number} was already placed with different content.")
    return existing


async def get(session: AsyncSession, *, order_id: str, fresh: bool = False) -> Order:
    """The order; `fresh` reads it again from the database even if the session holds it."""
    order = await session.get(Order, order_id, populate_existing=fresh)
    if order is None:
        raise NotFound(f"No order {order_id}.")
    return order


async def change_status(
    session: AsyncSession,
    *,
    order: Order,
    change: StatusChange,
    transitions: dict[str, set[str]] = TRANSITIONS,
) -> Order:
    """Move the order along placed -> paid -> shipped -> delivered (or cancelled/refunded); emits
    order.status_changed. Repeating the current status is a no-op; an impossible move is 409.

    The move is a compare-and-set on the status it was checked against: of two concurrent changes
    (cancel and ship, say) one wins, and the other is decided again on the order as the winner left
    it (a no-op if it asked for that status, 409 if the move is no longer possible), so the timeline
    and the events record each change once."""
    for _ in range(CHANGE_ATTEMPTS):
        if change.status == order.status:
            return order
        if change.status not in transitions[order.status]:
            raise Conflict(f"An order that is {order.status} cannot become {change.status}.")
        if change.status == "shipped":
            missing = [name for name in ("carrier", "tracking_number") if not getattr(change, name)]
            if missing:
                raise customers.unprocessable(
                    f"body.{missing[0]}", "Required when the order is shipped.", "missing"
                )
        previous = order.status
        stamp = customers.now()
        values: dict[str, Any] = {
            "status": change.status,
            "version": col(Order.version) + 1,
            "updated_at": stamp,
        }
        if change.status == "shipped":
            values.update(carrier=change.carrier, tracking_number=change.tracking_number)
        won = await compare_and_set(
            session,
            update(Order).where(col(Order.id) == order.id, col(Order.status) == previous).values(values),
        )
        order = await get(session, order_id=order.id, fresh=True)
        if won:
            break
    else:
        raise Conflict("The order keeps changing; read it again and retry.")
    session.add(
        OrderStatusChange(
            order_id=order.id,
            status=change.status,
            previous_status=previous,
            carrier=change.carrier,
            tracking_number=change.tracking_number,
            note=change.note,
            changed_at=stamp,
        )
    )
    await session.flush()
    await outbox.add(
        session,
        build_event(
            "ecom.order.status_changed.v1",
            OrderStatusChanged(
                order_id=order.id,
                order_number=order.order_number,
                customer_id=order.customer_id,
                status=change.status,
                previous_status=previous,
                changed_at=stamp,
                lines=_lines(order),
                location_id=order.location_id,
                carrier=order.carrier if change.status == "shipped" else None,
                tracking_number=order.tracking_number if change.status == "shipped" else None,
            ),
            subject=order.id,
            sequence=order.version,
        ),
    )
    return order


async def timeline(session: AsyncSession, order_id: str) -> Sequence[OrderStatusChange]:
    return (
        (
            await session.execute(
                select(OrderStatusChange)
                .where(col(OrderStatusChange.order_id) == order_id)
                .order_by(col(OrderStatusChange.id))
            )
        )
        .scalars()
        .all()
    )


async def to_read(session: AsyncSession, order: Order) -> OrderRead:
    data: dict[str, Any] = order.model_dump()
    data["placed_at"] = customers.aware(order.placed_at)
    data["updated_at"] = customers.aware(order.updated_at)
    if order.shipment_updated_at is not None:
        data["shipment_updated_at"] = customers.aware(order.shipment_updated_at)
    data["timeline"] = [
        TimelineEntry(
            status=entry.status,
            previous_status=entry.previous_status,
            carrier=entry.carrier,
            tracking_number=entry.tracking_number,
            note=entry.note,
            changed_at=customers.aware(entry.changed_at),
        )
        for entry in await timeline(session, order.id)
    ]
    return OrderRead.model_validate(data)


async def for_customer(
    session: AsyncSession, *, customer_id: str, after_id: str | None, limit: int
) -> list[Order]:
    query = select(Order).where(col(Order.customer_id) == customer_id)
    if after_id is not None:
        query = query.where(col(Order.id) < after_id)
    return list((await session.execute(query.order_by(col(Order.id).desc()).limit(limit + 1))).scalars())
