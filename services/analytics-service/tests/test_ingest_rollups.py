"""Rollups from tracked events and orders: counts by hand, and equal to a from-scratch recomputation after
duplicated and out-of-order delivery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from analytics_support import (
    Deliverer,
    at,
    channel_rollup,
    daily_rollup,
    merged,
    nonzero,
    placed,
    price,
    product,
    product_rollup,
    recomputed,
    status,
    tracked,
    unique,
    unmerged,
)

from analytics_service.config import Settings
from analytics_service.kpis import service as kpis
from analytics_service.periods import DateRange
from analytics_service.warehouse import rollups
from servicekit.db import Database


async def test_a_visit_and_its_order_count_in_the_channel_and_product_rollups(database: Database) -> None:
    deliver = Deliverer(database)
    channel, sku, customer, order_id = unique("ch"), unique("SKU"), unique("c"), unique("o")
    s1, s2 = unique("s"), unique("s")
    await deliver([product(sku, "shoes"), price(sku, "50.00", "20.00", at(-10))])
    await deliver(
        [
            tracked(
                "Page Viewed", session=s1, when=at(0, 0), anonymous="a1", channel=channel, campaign="spring"
            ),
            tracked("Product Viewed", session=s1, when=at(0, 0.1), anonymous="a1", channel=channel, sku=sku),
            tracked("Product Added", session=s1, when=at(0, 0.2), anonymous="a1", channel=channel, sku=sku),
            tracked(
                "Checkout Started",
                session=s1,
                when=at(0, 0.3),
                anonymous="a1",
                customer=customer,
                channel=channel,
            ),
            tracked(
                "Order Completed",
                session=s1,
                when=at(0, 0.4),
                customer=customer,
                channel=channel,
                order_id=order_id,
            ),
            tracked("Product Viewed", session=s2, when=at(0, 2), anonymous="a2", channel=channel, sku=sku),
        ]
    )
    await deliver([placed(order_id, customer, at(0, 0.4), [(sku, 2, "50.00")], discount="10.00")])
    rollup = {k: v for k, v in (await channel_rollup(database)).items() if k[1] == channel}
    assert rollup == {
        (at().date(), channel, "spring"): {
            "sessions": 1,
            "sessions_viewed": 1,
            "sessions_added": 1,
            "sessions_checkout": 1,
            "sessions_purchased": 1,
            "page_views": 1,
            "product_views": 1,
            "events": 5,
            "orders": 1,
            "new_customer_orders": 1,
            "customer_orders": 1,
            "revenue_minor": 9000,
            "cogs_minor": 4000,
            "units": 2,
        },
        (at().date(), channel, ""): {"sessions": 1, "sessions_viewed": 1, "product_views": 1, "events": 1},
    }
    products = {k: v for k, v in (await product_rollup(database)).items() if k[1] == sku}
    assert products == {
        (at().date(), sku, ""): {
            "views": 2,
            "adds": 1,
            "orders": 1,
            "units": 2,
            "revenue_minor": 10000,
            "cogs_minor": 4000,
        }
    }

    await deliver([status(order_id, customer, "cancelled", at(1))])
    rollup = {k: v for k, v in (await channel_rollup(database)).items() if k[1] == channel}
    assert rollup[(at().date(), channel, "spring")]["cancelled_orders"] == 1
    assert "orders" not in rollup[(at().date(), channel, "spring")]
    products = {k: v for k, v in (await product_rollup(database)).items() if k[1] == sku}
    assert products == {(at().date(), sku, ""): {"views": 2, "adds": 1}}


def _scenario(rng: random.Random, channels: list[str], skus: list[str]) -> list:  # type: ignore[type-arg]
    """Sessions with funnels, identify, orders with status changes; every id unique to this call."""
    events = []
    customers = [unique("c") for _ in range(6)]
    names = [
        "Page Viewed",
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Cart Viewed",
    ]
    for _ in range(40):
        session = unique("s")
        anonymous = unique("a")
        customer = rng.choice(customers) if rng.random() < 0.6 else None
        start = at(rng.randrange(3), rng.random() * 23)
        channel, campaign = rng.choice(channels), rng.choice(["", "spring", "retarget"])
        steps = rng.randrange(1, 6)
        for step in range(steps):
            when = start + timedelta(minutes=step * 3)
            events.append(
                tracked(
                    rng.choice(names),
                    session=session,
                    when=when,
                    anonymous=anonymous,
                    customer=customer if step == steps - 1 else None,
                    channel=channel if step == 0 else rng.choice(channels),
                    campaign=campaign if step == 0 else "",
                    sku=rng.choice(skus),
                )
            )
        if customer is not None and rng.random() < 0.7:
            order_id = unique("o")
            done = start + timedelta(minutes=30)
            events.append(
                tracked(
                    "Order Completed",
                    session=session,
                    when=done,
                    customer=customer,
                    channel=channel,
                    order_id=order_id,
                )
            )
            lines = [(rng.choice(skus), rng.randrange(1, 4), rng.choice(["9.90", "25.00", "120.00"]))]
            events.append(
                placed(order_id, customer, done, lines, currency=rng.choice(["EUR", "EUR", "EUR", "USD"]))
            )
            fate = rng.random()
            if fate < 0.2:
                events.append(status(order_id, customer, "cancelled", done + timedelta(hours=1)))
            elif fate < 0.3:
                events.append(status(order_id, customer, "paid", done + timedelta(hours=1)))
                events.append(status(order_id, customer, "refunded", done + timedelta(days=2), "paid"))
    return events


def _redelivered(rng: random.Random, events: list) -> list:  # type: ignore[type-arg]
    """Every event once, a quarter of them twice (the same envelope, or a new envelope of the same data, as a
    client retry makes), all shuffled."""
    out = list(events)
    for event in rng.sample(events, len(events) // 4):
        out.append(event if rng.random() < 0.5 else event.model_copy(update={"id": unique("retry")}))
    rng.shuffle(out)
    return out


async def test_orders_placed_at_a_time_without_an_offset_or_with_one_count_on_their_utc_day(
    database: Database,
) -> None:
    """An order.placed whose placed_at has no offset (sync-service's sales files and customer-service's
    API let one through) failed the handler on comparing it with the customer's aware first-seen time, so
    it was dead-lettered and missing from every KPI; one with an offset counted on its local day."""
    deliver = Deliverer(database)
    channel, customer, sku = unique("pos"), unique("c"), unique("SKU")
    first, naive, offset = unique("o"), unique("o"), unique("o")
    await deliver(
        [placed(first, customer, datetime(2026, 11, 20, 10, tzinfo=UTC), [(sku, 1, "5.00")], channel=channel)]
    )
    await deliver([placed(naive, customer, datetime(2026, 11, 21, 10), [(sku, 1, "5.00")], channel=channel)])
    late_evening = datetime(2026, 11, 22, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    await deliver([placed(offset, customer, late_evening, [(sku, 1, "5.00")], channel=channel)])
    await deliver([status(naive, customer, "cancelled", datetime(2026, 11, 21, 12))])

    rollup = {
        k[0]: v["orders"]
        for k, v in (await channel_rollup(database)).items()
        if k[1] == channel and "orders" in v
    }
    assert rollup == {datetime(2026, 11, 20).date(): 1, datetime(2026, 11, 23).date(): 1}


async def test_rollups_equal_a_recomputation_after_duplicated_and_out_of_order_delivery(
    database: Database,
) -> None:
    rng = random.Random(12)
    channels = [unique("ch"), unique("ch")]
    skus = [unique("SKU") for _ in range(4)]
    deliver = Deliverer(database)
    await deliver([e for s in skus for e in (product(s, "cat"), price(s, "10.00", "4.00", at(-30)))])
    events = _scenario(rng, channels, skus)
    delivered = _redelivered(rng, events)
    position = 0
    while position < len(delivered):
        size = rng.randrange(1, 60)
        await deliver(delivered[position : position + size], batch=size)
        position += size

    expected = await recomputed(database)
    want_channels = nonzero(expected.channel, lambda k: k[1] in channels)
    want_products = nonzero(expected.product, lambda k: k[1] in skus)
    got_channels = {k: v for k, v in (await channel_rollup(database)).items() if k[1] in channels}
    got_products = {k: v for k, v in (await product_rollup(database)).items() if k[1] in skus}
    assert got_channels == want_channels
    assert got_products == want_products
    assert await daily_rollup(database) == _by_day(await channel_rollup(database))
    assert sum(c.get("orders", 0) for c in got_channels.values()) >= 3
    assert sum(c.get("cancelled_orders", 0) for c in got_channels.values()) > 0


def _by_day(channel: dict[tuple[Any, ...], dict[str, int]]) -> dict[tuple[Any, ...], dict[str, int]]:
    summed = rollups.by_day(channel)  # type: ignore[arg-type]
    return {(day,): {n: v for n, v in c.items() if v} for day, c in summed.items() if any(c.values())}


async def _both_repeat_rates(
    database: Database, span: DateRange, channel: str | None = None
) -> tuple[Any, Any]:
    """The repeat purchase rates of `span` and its previous period (of one channel's orders), from the
    prior-order days (what GET /v1/kpis reads) and from the orders grouped by customer."""
    before = span.previous()
    filters = kpis.Filters(channel=channel, currency=Settings().reporting_currency)
    async with database.read() as connection:
        days = await kpis.daily_sums(connection, DateRange(before.start, span.end), filters)
        orders = (
            sum(c["customer_orders"] for d, c in days.items() if d is not None and d >= span.start),
            sum(c["customer_orders"] for d, c in days.items() if d is not None and d < span.start),
        )
        fast = await kpis.repeat_rates_from_prior_orders(connection, span, before, orders, channel=channel)
        grouped = await kpis.repeat_rates_by_customer(connection, span, before, filters)
    return fast, grouped


async def test_repeat_purchase_rates_from_prior_orders_equal_grouping_by_customer(database: Database) -> None:
    rng = random.Random(5)
    customers = [unique("c") for _ in range(8)]
    channels = [unique("web"), unique("pos")]  # sales channels: no session attributes these orders
    sku = unique("SKU")
    events = [product(sku, "cat"), price(sku, "10.00", "4.00", at(-60))]
    orders: list[tuple[str, str]] = []
    for _ in range(60):
        order_id, customer = unique("o"), rng.choice(customers)
        when = at(rng.randrange(-20, 20), rng.random() * 23)
        currency = "USD" if rng.random() < 0.1 else "EUR"
        sales_channel = rng.choice(channels)
        events.append(
            placed(order_id, customer, when, [(sku, 1, "10.00")], currency=currency, channel=sales_channel)
        )
        if rng.random() < 0.15:
            events.append(status(order_id, customer, "cancelled", when + timedelta(hours=1)))
        orders.append((order_id, customer))
    rng.shuffle(events)  # out of order: a customer's orders arrive in any order
    deliver = Deliverer(database)
    await deliver(events, batch=7)
    ranges = [
        DateRange(at(start).date(), at(start + length - 1).date())
        for start, length in ((0, 7), (-5, 10), (3, 1))
    ]
    rates = []
    for span in ranges:
        for channel in (None, *channels):
            fast, grouped = await _both_repeat_rates(database, span, channel)
            assert fast == grouped
            rates += [rate for rate in fast if rate]
    assert rates  # some customer ordered twice in a range

    # a merge moves one customer's orders into another's chain; the unmerge splits them again
    await deliver([merged(customers[0], [customers[1]], "m-1", at(21))])
    for span in ranges:
        for channel in (None, *channels):
            fast, grouped = await _both_repeat_rates(database, span, channel)
            assert fast == grouped
    await deliver([unmerged(customers[0], [customers[1]], "m-1", at(22))])
    await deliver([status(orders[0][0], orders[0][1], "refunded", at(23), "placed")])
    for span in ranges:
        for channel in (None, *channels):
            fast, grouped = await _both_repeat_rates(database, span, channel)
            assert fast == grouped
