"""An order's cost of goods is its SKUs' unit costs in effect when it was placed, whichever of the order
and the price events arrived first (ecom.orders.v1 and ecom.prices.v1 are different topics)."""

from __future__ import annotations

import asyncio
import itertools
import random

from analytics_support import (
    Deliverer,
    at,
    channel_rollup,
    nonzero,
    placed,
    price,
    product,
    product_rollup,
    recomputed,
    unique,
)
from sqlalchemy import select
from sqlmodel import col

from analytics_service.warehouse.models import OrderFact
from contracts import CloudEvent
from servicekit.db import Database


async def _costs(database: Database, order_ids: list[str]) -> dict[str, tuple[int, bool]]:
    async with database.session() as session:
        facts = await session.scalars(select(OrderFact).where(col(OrderFact.order_id).in_(order_ids)))
        return {f.order_id: (f.cogs_minor, f.cogs_complete) for f in facts}


async def _rollups_equal_a_recomputation(database: Database, skus: list[str]) -> None:
    expected = await recomputed(database)
    got = {k: v for k, v in (await product_rollup(database)).items() if k[1] in skus}
    assert got == nonzero(expected.product, lambda k: k[1] in skus)
    assert await channel_rollup(database) == nonzero(expected.channel, lambda k: True)


async def test_orders_are_costed_at_the_cost_in_effect_when_placed_in_any_arrival_order(
    database: Database,
) -> None:
    """Cost 4.00 from day -30, 6.00 from day -5. An order of day -40 (before any cost: the earliest stands
    in), one of day -10 and one of day -1, delivered in every order of the five events, one SKU each."""
    deliver = Deliverer(database)
    skus = []
    for arrival in itertools.permutations(range(5)):
        sku, customer = unique("SKU"), unique("c")
        skus.append(sku)
        ids = [unique("o") for _ in range(3)]
        events = [
            price(sku, "10.00", "4.00", at(-30)),
            price(sku, "12.00", "6.00", at(-5)),
            placed(ids[0], customer, at(-40), [(sku, 2, "10.00")]),
            placed(ids[1], customer, at(-10), [(sku, 1, "10.00")]),
            placed(ids[2], customer, at(-1), [(sku, 3, "12.00")]),
        ]
        await deliver([product(sku, "cat")])
        await deliver([events[i] for i in arrival], batch=1)
        assert await _costs(database, ids) == {
            ids[0]: (800, True),
            ids[1]: (400, True),
            ids[2]: (1800, True),
        }, arrival
    await _rollups_equal_a_recomputation(database, skus)


async def test_orders_of_two_skus_are_costed_again_as_late_costs_arrive(database: Database) -> None:
    """Orders with lines of two SKUs, prices with and without a cost, a correction of a cost sent again,
    shuffled: each order ends costed from the histories, and the rollups equal a recomputation."""
    rng = random.Random(7)
    deliver = Deliverer(database)
    a, b, customer = unique("SKU"), unique("SKU"), unique("c")
    await deliver([product(a, "cat"), product(b, "cat")])
    events = [
        price(a, "10.00", "3.00", at(-20)),
        price(a, "11.00", None, at(-15)),  # a price without a cost keeps the cost
        price(a, "11.00", "5.00", at(-8)),
        price(b, "20.00", "9.00", at(-12)),
        price(b, "20.00", "8.00", at(-12)),  # the same moment sent again: the later correction
    ]
    orders = {
        unique("o"): (at(-25), 1, 1),  # a: 3.00 (the earliest), b: 8.00 (the earliest)
        unique("o"): (at(-18), 2, 0),  # a: 3.00
        unique("o"): (at(-10), 1, 2),  # a: 3.00, b: 8.00
        unique("o"): (at(-2), 4, 1),  # a: 5.00, b: 8.00
    }
    order_events = [
        placed(order_id, customer, when, [(a, qa, "10.00")] + ([(b, qb, "20.00")] if qb else []))
        for order_id, (when, qa, qb) in orders.items()
    ]
    shuffled = events[:4] + order_events
    rng.shuffle(shuffled)
    await deliver(shuffled, batch=3)
    await deliver([events[4]])  # the correction comes last
    assert await _costs(database, list(orders)) == {
        order_id: (qa * (300 if when < at(-8) else 500) + qb * 800, True)
        for order_id, (when, qa, qb) in orders.items()
    }
    await _rollups_equal_a_recomputation(database, [a, b])


async def test_an_order_of_a_sku_without_a_cost_stays_incomplete_until_one_arrives(
    database: Database,
) -> None:
    deliver = Deliverer(database)
    sku, customer, order_id = unique("SKU"), unique("c"), unique("o")
    await deliver([placed(order_id, customer, at(-3), [(sku, 2, "10.00")])])
    assert await _costs(database, [order_id]) == {order_id: (0, False)}
    await deliver([price(sku, "10.00", "2.50", at(0))])  # known only after the order: it stands in
    assert await _costs(database, [order_id]) == {order_id: (500, True)}
    await deliver([price(sku, "10.00", "2.50", at(0))])  # the same cost again changes nothing
    assert await _costs(database, [order_id]) == {order_id: (500, True)}
    await _rollups_equal_a_recomputation(database, [sku])


async def test_an_order_and_its_skus_cost_racing_end_costed_whichever_runs_first(database: Database) -> None:
    """Two transactions at once: an order being placed and its SKU's cost arriving. The first is held open
    after its handler ran while the second runs as far as it can; then the first commits. Either the
    order reads the cost, or the price event finds the order: it ends costed either way."""
    handlers = Deliverer(database).handlers
    for first in ("order", "price"):
        sku, customer, order_id = unique("SKU"), unique("c"), unique("o")
        await Deliverer(database)([product(sku, "cat")])  # the catalog knows the SKU before it sells
        events = {
            "order": placed(order_id, customer, at(-2), [(sku, 3, "10.00")]),
            "price": price(sku, "10.00", "4.00", at(-9)),
        }
        second = events["price" if first == "order" else "order"]

        async def run(event: CloudEvent) -> None:
            async with database.session() as session:
                await handlers[event.type](session, event)

        async with database.session() as held:
            await handlers[events[first].type](held, events[first])
            racing = asyncio.create_task(run(second))
            await asyncio.sleep(0.5)  # the second transaction gets as far as it can meanwhile
        await asyncio.wait_for(racing, 30)
        assert await _costs(database, [order_id]) == {order_id: (1200, True)}, first
    await _rollups_equal_a_recomputation(database, [])
