"""Backordered order lines: product-service could not reserve a line (no stock, or the SKU or location
it names does not exist) and says so with `ecom.stock.backordered.v1`; the order then shows it on that
line, so the caller who placed the order learns it from `GET /v1/orders/{id}`, with the date announced
supplier deliveries are expected to cover it (`ecom.stock.backorder_expected.v1` when that changes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.inventory import StockBackordered, StockBackorderExpected
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
    if fact.reservation_id is not None:
        line["backorder_id"] = fact.reservation_id
    if fact.expected_date is not None:
        line["backorder_expected_date"] = fact.expected_date.isoformat()
    await _write_lines(session, order, lines, "its backorder was recorded")


async def on_backorder_expected(session: AsyncSession, event: CloudEvent) -> None:
    """Show the new expected date on the backordered line (found by the backorder's reservation id). A
    compare-and-set on the order's version, like the backorder itself."""
    fact = parse_data(event)
    assert isinstance(fact, StockBackorderExpected)
    order = await session.get(Order, fact.order_id, populate_existing=True)
    if order is None:
        return
    lines = [dict(line) for line in order.lines]
    line = next((x for x in lines if x.get("backorder_id") == fact.reservation_id), None)
    if line is None:
        return  # the backorder event has not marked the line: it carries the date itself
    expected = fact.expected_date.isoformat() if fact.expected_date is not None else None
    if line.get("backorder_expected_date") == expected:
        return
    line["backorder_expected_date"] = expected
    await _write_lines(session, order, lines, "its backorder's expected date changed")


async def _write_lines(session: AsyncSession, order: Order, lines: list[dict[str, Any]], what: str) -> None:
    won = await compare_and_set(
        session,
        update(Order)
        .where(col(Order.id) == order.id, col(Order.version) == order.version)
        .values(lines=lines, version=order.version + 1, updated_at=customers.now()),
    )
    if not won:
        raise Conflict(f"Order {order.id} changed while {what}; retrying.")
