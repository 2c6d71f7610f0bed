"""Backordered order lines: product-service could not reserve a line (no stock, or the SKU or location
it names does not exist) and says so with `ecom.stock.backordered.v1`; the order then shows it on that
line, so the caller who placed the order learns it from `GET /v1/orders/{id}`."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.inventory import StockBackordered
from customer_service.customers import service as customers
from customer_service.orders.models import Order
from servicekit.errors import Conflict
from servicekit.transitions import compare_and_set


async def on_stock_backordered(session: AsyncSession, event: CloudEvent) -> None:
    """Mark the first line of the order with the SKU that is not marked yet (an order with the same SKU
    on two lines gets one event per line). A compare-and-set on the order's version: a concurrent change
    of the order makes the handler fail and the consumer retry it on the new version."""
    fact = parse_data(event)
    assert isinstance(fact, StockBackordered)
    order = await session.get(Order, fact.order_id, populate_existing=True)
    if order is None:
        return  # not an order of this service (placed elsewhere): nothing to show it on
    lines = [dict(line) for line in order.lines]
    line = next((x for x in lines if x["sku"] == fact.sku and "backorder_reason" not in x), None)
    if line is None:
        return
    line["backordered_quantity"] = fact.quantity
    line["backorder_reason"] = fact.reason
    won = await compare_and_set(
        session,
        update(Order)
        .where(col(Order.id) == order.id, col(Order.version) == order.version)
        .values(lines=lines, version=order.version + 1, updated_at=customers.now()),
    )
    if not won:
        raise Conflict(f"Order {order.id} changed while its backorder was recorded; retrying.")
