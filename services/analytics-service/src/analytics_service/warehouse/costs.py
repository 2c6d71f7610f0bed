"""Unit costs over time (`product_costs`), and the cost of goods of orders read from them.

An order line costs the SKU's unit cost in the order's currency that was in effect when the order was
placed: the latest cost whose `effective_from` is not after `placed_at`. A cost first known after an
order (a catalog whose costs were entered after its first sales) stands for the time before it too, so
such an order is costed at the earliest known cost rather than not at all.

The order events (ecom.orders.v1) and the price events (ecom.prices.v1) arrive on different topics, in
any order. An order placed before its SKU's cost arrived is costed again when the cost arrives: a new
cost changes the cost in effect over a window of time, and every order of the SKU placed in that window
is costed again, its rollup contribution moved by the difference (`cost_again`). So the cost of goods,
the net profit and its margin end the same whichever order the events came in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import customers, rollups
from analytics_service.warehouse.models import OrderFact, OrderLineFact, ProductCost, ProductFact
from servicekit.db import as_utc

CostKey = tuple[str, str]
"""(SKU, currency)"""
COST_AGAIN_CHUNK = 500
"""Orders costed again per round: locked, read and moved together"""


async def histories(
    session: AsyncSession, keys: Iterable[CostKey], *, lock: bool = True
) -> dict[CostKey, list[ProductCost]]:
    """Each (SKU, currency)'s costs, oldest first (an empty list when none is known).

    With `lock`, the SKUs' product rows are locked first (PostgreSQL; SQLite has one writer at a time
    anyway). An order being placed locks its SKUs' rows and a price event its SKU's row (`record`) before
    reading costs, so of an order and a price event of one of its SKUs one waits for the other: either
    the order reads the new cost, or the price event finds the order to cost again. (A SKU without a
    product row, neither its product nor a price event folded yet, has nothing to lock: its first price
    event and its first order, folded at the same moment by two instances, could still miss each other.)
    A price event costing its orders again reads the other SKUs' costs without locking: a price event of
    another SKU of the same order costs that order again after it."""
    wanted = set(keys)
    found: dict[CostKey, list[ProductCost]] = {key: [] for key in wanted}
    skus = sorted({sku for sku, _ in wanted})
    if not skus:
        return found
    if lock:
        await session.execute(
            select(col(ProductFact.sku))
            .where(col(ProductFact.sku).in_(skus))
            .order_by(col(ProductFact.sku))
            .with_for_update()
        )
    rows = await session.scalars(
        select(ProductCost)
        .where(col(ProductCost.sku).in_(skus))
        .order_by(col(ProductCost.sku), col(ProductCost.currency), col(ProductCost.effective_from))
    )
    for row in rows:
        key = (row.sku, row.currency)
        if key in found:
            found[key].append(row)
    return found


def cost_at(history: Sequence[ProductCost], moment: datetime) -> int | None:
    """The cost in effect at `moment`: the latest that took effect by then, else the earliest known."""
    chosen: int | None = None
    for entry in history:  # oldest first
        if chosen is None or as_utc(entry.effective_from) <= moment:
            chosen = entry.cost_minor
        else:
            break
    return chosen


def cost_lines(
    fact: OrderFact, lines: Sequence[OrderLineFact], history: dict[CostKey, list[ProductCost]]
) -> bool:
    """Set each line's unit cost and the order's cost of goods from the histories (which hold every line's
    (SKU, order currency)); whether anything changed."""
    assert fact.placed_at is not None
    assert fact.currency is not None
    placed_at = as_utc(fact.placed_at)
    changed = False
    cogs, complete = 0, True
    for line in lines:
        unit_cost = cost_at(history[(line.sku, fact.currency)], placed_at)
        if line.unit_cost_minor != unit_cost:
            line.unit_cost_minor = unit_cost
            changed = True
        complete = complete and unit_cost is not None
        cogs += line.quantity * (unit_cost or 0)
    if (fact.cogs_minor, fact.cogs_complete) != (cogs, complete):
        fact.cogs_minor, fact.cogs_complete = cogs, complete
        changed = True
    return changed


async def record(
    session: AsyncSession, sku: str, currency: str, effective_from: datetime, cost_minor: int
) -> tuple[datetime | None, datetime | None] | None:
    """Keep a cost (the same SKU, currency and moment sent again replaces it). The window of placing
    times whose cost in effect it changes, as (from, until), either end open (None); None when nothing
    changed."""
    effective_from = as_utc(effective_from)
    history = (await histories(session, [(sku, currency)]))[(sku, currency)]
    held = next((e for e in history if as_utc(e.effective_from) == effective_from), None)
    if held is not None:
        if held.cost_minor == cost_minor:
            return None
        held.cost_minor = cost_minor
    else:
        session.add(
            ProductCost(sku=sku, currency=currency, effective_from=effective_from, cost_minor=cost_minor)
        )
    await session.flush()
    moments = [as_utc(e.effective_from) for e in history]
    later = [moment for moment in moments if moment > effective_from]
    # Before the earliest cost, the earliest stands in: a new earliest changes that time too.
    has_earlier = any(moment < effective_from for moment in moments)
    return (effective_from if has_earlier else None), (min(later) if later else None)


async def orders_placed_within(
    session: AsyncSession, sku: str, currency: str, window: tuple[datetime | None, datetime | None]
) -> list[str]:
    """The placed orders in `currency` with a line of `sku` placed in the window ([from, until))."""
    start, until = window
    query = (
        select(col(OrderFact.order_id))
        .join(OrderLineFact, col(OrderLineFact.order_id) == col(OrderFact.order_id))
        .where(
            col(OrderLineFact.sku) == sku,
            col(OrderFact.currency) == currency,
            col(OrderFact.placed).is_(True),
        )
        .distinct()
        .order_by(col(OrderFact.order_id))
    )
    if start is not None:
        query = query.where(col(OrderFact.placed_at) >= start)
    if until is not None:
        query = query.where(col(OrderFact.placed_at) < until)
    return list(await session.scalars(query))


async def cost_again(session: AsyncSession, order_ids: Sequence[str], *, reporting_currency: str) -> None:
    """Cost the orders again from the histories (a cost arrived that changes the cost in effect when they
    were placed), a chunk at a time: the orders locked (in id order), their lines and the costs of all
    their SKUs read at once, and the rollups moved by one difference. A cost changes no customer's
    figures, so unlike `orders.change_order` nothing else is recomputed."""
    for start in range(0, len(order_ids), COST_AGAIN_CHUNK):
        chunk = sorted(order_ids[start : start + COST_AGAIN_CHUNK])
        facts = list(
            await session.scalars(
                select(OrderFact)
                .where(col(OrderFact.order_id).in_(chunk))
                .order_by(col(OrderFact.order_id))
                .with_for_update()
            )
        )
        lines = await customers.order_lines(session, chunk)
        keys = {(line.sku, fact.currency) for fact in facts for line in lines[fact.order_id] if fact.currency}
        history = await histories(session, keys, lock=False)
        delta = rollups.Contribution()
        for fact in facts:
            held = lines[fact.order_id]
            before = rollups.order_contribution(fact, held, reporting_currency=reporting_currency)
            if fact.placed and cost_lines(fact, held, history):
                rollups.order_contribution(fact, held, reporting_currency=reporting_currency, into=delta)
                delta.add(before, -1)
        await session.flush()
        await rollups.apply(session, delta)
