"""Identity stitching, analytics consent in tracking, and merges moving a customer's events and metrics."""

from __future__ import annotations

from analytics_support import (
    Deliverer,
    at,
    channel_rollup,
    consent,
    merged,
    placed,
    tracked,
    unique,
    unmerged,
)
from sqlalchemy import select

from analytics_service.config import Settings
from analytics_service.warehouse.models import (
    ActivityEvent,
    CustomerProfile,
    IdentityLink,
    OrderFact,
    SessionFact,
)
from servicekit.db import Database


async def _events(database: Database, session_id: str) -> list[ActivityEvent]:
    async with database.session() as session:
        return list(
            await session.scalars(
                select(ActivityEvent)
                .where(ActivityEvent.session_id == session_id)
                .order_by(ActivityEvent.occurred_at)
            )
        )


async def _profile(database: Database, customer_id: str) -> CustomerProfile:
    async with database.session() as session:
        profile = await session.get(CustomerProfile, customer_id)
        assert profile is not None
        return profile


async def test_anonymous_events_before_and_after_identify_belong_to_the_customer(database: Database) -> None:
    deliver = Deliverer(database)
    anonymous, customer, s1, s2 = unique("a"), unique("c"), unique("s"), unique("s")
    await deliver([tracked("Product Viewed", session=s1, when=at(0), anonymous=anonymous, sku="X")])
    await deliver([tracked("Identify", session=None, when=at(0, 1), anonymous=anonymous, customer=customer)])
    await deliver([tracked("Page Viewed", session=s2, when=at(1), anonymous=anonymous)])
    assert [e.customer_id for e in await _events(database, s1)] == [customer]
    assert [e.customer_id for e in await _events(database, s2)] == [customer]
    async with database.session() as session:
        link = await session.get(IdentityLink, anonymous)
        fact = await session.get(SessionFact, s1)
    assert link is not None
    assert link.customer_id == customer
    assert fact is not None
    assert fact.customer_id == customer


async def test_anonymous_events_in_the_batch_that_identifies_belong_to_the_customer(
    database: Database,
) -> None:
    deliver = Deliverer(database)
    anonymous, customer, s1, s2 = unique("a"), unique("c"), unique("s"), unique("s")
    await deliver(
        [
            tracked("Product Viewed", session=s1, when=at(0), anonymous=anonymous, sku="X"),
            tracked("Identify", session=None, when=at(0, 1), anonymous=anonymous, customer=customer),
            tracked("Page Viewed", session=s2, when=at(0, 2), anonymous=anonymous),
        ]
    )
    assert [e.customer_id for e in await _events(database, s1)] == [customer]
    assert [e.customer_id for e in await _events(database, s2)] == [customer]
    async with database.session() as session:
        fact = await session.get(SessionFact, s2)
    assert fact is not None
    assert fact.customer_id == customer


async def test_a_second_customer_on_the_same_device_does_not_steal_the_link(database: Database) -> None:
    deliver = Deliverer(database)
    anonymous, first, second = unique("a"), unique("c"), unique("c")
    await deliver([tracked("Identify", session=None, when=at(0), anonymous=anonymous, customer=first)])
    await deliver([tracked("Identify", session=None, when=at(1), anonymous=anonymous, customer=second)])
    async with database.session() as session:
        link = await session.get(IdentityLink, anonymous)
    assert link is not None
    assert link.customer_id == first


async def test_events_of_a_customer_who_withdrew_analytics_consent_lose_their_identity(
    database: Database,
) -> None:
    deliver = Deliverer(database)
    customer, anonymous, s1, s2 = unique("c"), unique("a"), unique("s"), unique("s")
    await deliver([tracked("Page Viewed", session=s1, when=at(0), anonymous=anonymous, customer=customer)])
    await deliver([consent(customer, "analytics", "withdrawn", at(0, 1))])
    await deliver(
        [
            tracked(
                "Product Viewed", session=s2, when=at(0, 2), anonymous=anonymous, customer=customer, sku="X"
            )
        ]
    )
    for session_id in (s1, s2):
        stored = await _events(database, session_id)
        assert len(stored) == 1
        assert (stored[0].customer_id, stored[0].anonymous_id) == (None, None)
    async with database.session() as session:
        assert await session.get(IdentityLink, anonymous) is None
        fact = await session.get(SessionFact, s2)
    assert fact is not None
    assert (fact.customer_id, fact.anonymous_id, fact.events) == (None, None, 1)


async def test_drop_mode_discards_events_of_a_customer_without_analytics_consent(database: Database) -> None:
    deliver = Deliverer(database, Settings(database_url=database.url, consent_mode="drop"))
    customer, s1 = unique("c"), unique("s")
    await deliver([consent(customer, "analytics", "withdrawn", at(0))])
    await deliver([tracked("Page Viewed", session=s1, when=at(0, 1), customer=customer)])
    assert await _events(database, s1) == []


async def test_an_older_consent_decision_delivered_late_does_not_win(database: Database) -> None:
    deliver = Deliverer(database)
    customer, s1 = unique("c"), unique("s")
    await deliver(
        [
            consent(customer, "analytics", "granted", at(0, 2)),
            consent(customer, "analytics", "withdrawn", at(0, 1)),
        ]
    )
    await deliver([tracked("Page Viewed", session=s1, when=at(0, 3), customer=customer)])
    assert [e.customer_id for e in await _events(database, s1)] == [customer]


async def test_a_merge_moves_events_and_metrics_to_the_survivor_and_an_unmerge_moves_them_back(
    database: Database,
) -> None:
    deliver = Deliverer(database)
    survivor, duplicate, channel = unique("c"), unique("c"), unique("ch")
    s1, o1, o2 = unique("s"), unique("o"), unique("o")
    await deliver(
        [
            tracked("Page Viewed", session=s1, when=at(0), customer=duplicate, channel=channel),
            placed(o1, survivor, at(1), [("SKU-M", 1, "30.00")]),
            placed(o2, duplicate, at(0), [("SKU-M", 2, "10.00")]),
        ]
    )
    before = await _profile(database, survivor)
    assert (before.orders_count, before.revenue_minor) == (1, 3000)
    new_orders = sum(
        c.get("new_customer_orders", 0) for k, c in (await channel_rollup(database)).items() if k[1] == "web"
    )

    await deliver([merged(survivor, [duplicate], "merge-1", at(2))])
    after = await _profile(database, survivor)
    assert (after.orders_count, after.revenue_minor) == (2, 5000)
    assert after.first_order_at == at(0)
    gone = await _profile(database, duplicate)
    assert (gone.merged_into, gone.orders_count, gone.revenue_minor) == (survivor, 0, 0)
    assert [e.customer_id for e in await _events(database, s1)] == [survivor]
    # One customer now: the survivor's own order is no longer a first order.
    merged_new = sum(
        c.get("new_customer_orders", 0) for k, c in (await channel_rollup(database)).items() if k[1] == "web"
    )
    assert merged_new == new_orders - 1
    # A later event of the merged id belongs to the survivor too.
    s2 = unique("s")
    await deliver([tracked("Page Viewed", session=s2, when=at(3), customer=duplicate)])
    assert [e.customer_id for e in await _events(database, s2)] == [survivor]

    await deliver([unmerged(survivor, [duplicate], "merge-1", at(4))])
    restored = await _profile(database, duplicate)
    assert (restored.merged_into, restored.orders_count, restored.revenue_minor) == (None, 1, 2000)
    assert (await _profile(database, survivor)).orders_count == 1
    assert [e.customer_id for e in await _events(database, s1)] == [duplicate]
    assert [e.customer_id for e in await _events(database, s2)] == [duplicate]
    async with database.session() as session:
        order = await session.get(OrderFact, o2)
    assert order is not None
    assert order.customer_id == duplicate
    assert order.is_first
    back = sum(
        c.get("new_customer_orders", 0) for k, c in (await channel_rollup(database)).items() if k[1] == "web"
    )
    assert back == new_orders
