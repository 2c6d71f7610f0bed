"""Rollup maintenance: a fact's contribution to the rollups, and applying the difference when it changes.

A contribution is a pure function of one fact (a session, an order with its lines), so every change is
`new contribution - old contribution`, added to the rollup rows with one upsert per row. Redelivery
changes no fact (the facts are keyed by message id / order id), so it changes no rollup; a late event
changes its fact, and the difference moves the counts where they now belong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import repeat
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics_service.warehouse import bulk
from analytics_service.warehouse.models import (
    NO_CAMPAIGN,
    NO_LOCATION,
    DailyChannelRollup,
    DailyProductRollup,
    DailyRollup,
    OrderFact,
    OrderLineFact,
)

ChannelKey = tuple[date, str, str]
ProductKey = tuple[date, str, str]
Counts = dict[str, int]

NOT_COUNTED_STATUSES = frozenset({"cancelled", "refunded"})

CHANNEL_TABLE: Table = DailyChannelRollup.__table__  # type: ignore[attr-defined]
DAILY_TABLE: Table = DailyRollup.__table__  # type: ignore[attr-defined]
PRODUCT_TABLE: Table = DailyProductRollup.__table__  # type: ignore[attr-defined]


@dataclass
class Contribution:
    """What some facts add to the two rollups: counts per rollup key."""

    channel: dict[ChannelKey, Counts] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    product: dict[ProductKey, Counts] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, other: Contribution, sign: int = 1) -> None:
        for key, counts in other.channel.items():
            for name, value in counts.items():
                self.channel[key][name] += sign * value
        for pkey, counts in other.product.items():
            for name, value in counts.items():
                self.product[pkey][name] += sign * value


class SessionLike(Protocol):
    day: date
    channel: str
    campaign: str
    viewed: bool
    added: bool
    checkout: bool
    purchased: bool
    page_views: int
    product_views: int
    events: int


def count_event(fact: SessionLike, name: str) -> None:
    """Fold one event (by its spec name) into its session: counts and funnel steps reached."""
    fact.events += 1
    if name == "Page Viewed":
        fact.page_views += 1
    elif name == "Product Viewed":
        fact.product_views += 1
        fact.viewed = True
    elif name == "Product Added":
        fact.added = True
    elif name == "Checkout Started":
        fact.checkout = True
    elif name == "Order Completed":
        fact.purchased = True


def session_contribution(fact: SessionLike | None, into: Contribution | None = None) -> Contribution:
    """One session: one visit on its day, channel and campaign, and the funnel steps it reached."""
    out = into or Contribution()
    if fact is None:
        return out
    counts = out.channel[(fact.day, fact.channel, fact.campaign or NO_CAMPAIGN)]
    counts["sessions"] += 1
    counts["sessions_viewed"] += int(fact.viewed)
    counts["sessions_added"] += int(fact.added)
    counts["sessions_checkout"] += int(fact.checkout)
    counts["sessions_purchased"] += int(fact.purchased)
    counts["page_views"] += fact.page_views
    counts["product_views"] += fact.product_views
    counts["events"] += fact.events
    return out


def order_channel_key(fact: OrderFact) -> ChannelKey:
    assert fact.day is not None
    return (fact.day, fact.channel or fact.sales_channel or "unknown", fact.campaign or NO_CAMPAIGN)


def order_contribution(
    fact: OrderFact | None,
    lines: Iterable[OrderLineFact],
    *,
    reporting_currency: str,
    into: Contribution | None = None,
) -> Contribution:
    """One order, if placed and in the reporting currency: counted (orders, revenue, cost, units, new
    customer) unless cancelled or refunded, which count only in `cancelled_orders`; its lines count in
    the product rollup at the order's location."""
    out = into or Contribution()
    if fact is None or not fact.placed or fact.day is None or fact.currency != reporting_currency:
        return out
    counts = out.channel[order_channel_key(fact)]
    if fact.status in NOT_COUNTED_STATUSES:
        counts["cancelled_orders"] += 1
        return out
    lines = list(lines)
    counts["orders"] += 1
    counts["customer_orders"] += int(fact.customer_id is not None)
    counts["new_customer_orders"] += int(fact.is_first)
    counts["revenue_minor"] += fact.total_minor
    counts["cogs_minor"] += fact.cogs_minor
    counts["units"] += sum(line.quantity for line in lines)
    location = fact.location_id or NO_LOCATION
    for sku in {line.sku for line in lines}:
        out.product[(fact.day, sku, location)]["orders"] += 1
    for line in lines:
        product = out.product[(fact.day, line.sku, location)]
        product["units"] += line.quantity
        product["revenue_minor"] += line.quantity * line.unit_price_minor
        product["cogs_minor"] += line.quantity * (line.unit_cost_minor or 0)
    return out


def _nonzero(rows: Mapping[Any, Counts]) -> dict[Any, Counts]:
    kept: dict[Any, Counts] = {}
    for key, counts in rows.items():
        changed = {name: value for name, value in counts.items() if value}
        if changed:
            kept[key] = changed
    return kept


def by_day(channel: Mapping[ChannelKey, Counts]) -> dict[date, Counts]:
    """Channel rollup rows summed per day (what `rollup_daily` holds)."""
    days: dict[date, Counts] = defaultdict(lambda: defaultdict(int))
    for (day, _, _), counts in channel.items():
        total = days[day]
        for name, value in counts.items():
            total[name] += value
    return days


async def apply(session: AsyncSession, delta: Contribution) -> None:
    """Add `delta` to the rollup rows (creating missing rows), one upsert per touched row; the per-day
    totals move by the channel rows' differences summed per day."""
    channel = _nonzero(delta.channel)
    await _upsert(session, CHANNEL_TABLE, ("day", "channel", "campaign"), channel, CHANNEL_COUNTS)
    await _upsert(
        session,
        DAILY_TABLE,
        ("day",),
        _nonzero({(d,): c for d, c in by_day(channel).items()}),
        CHANNEL_COUNTS,
    )
    await _upsert(
        session, PRODUCT_TABLE, ("day", "sku", "location_id"), _nonzero(delta.product), PRODUCT_COUNTS
    )


CHANNEL_COUNTS = tuple(c.name for c in CHANNEL_TABLE.columns if c.name not in ("day", "channel", "campaign"))
PRODUCT_COUNTS = tuple(c.name for c in PRODUCT_TABLE.columns if c.name not in ("day", "sku", "location_id"))
_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert_statement(dialect: str, table: Table, key_names: tuple[str, ...], counts: tuple[str, ...]) -> Any:
    """One cached statement per table: every count column added (0 for those a row does not change), so
    a batch is one executemany of a statement compiled once."""
    cached = _UPSERTS.get((dialect, table.name))
    if cached is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table)
        cached = statement.on_conflict_do_update(
            index_elements=list(key_names),
            set_={name: table.c[name] + statement.excluded[name] for name in counts},
        )
        _UPSERTS[(dialect, table.name)] = cached
    return cached


async def _upsert(
    session: AsyncSession,
    table: Table,
    key_names: tuple[str, ...],
    rows: dict[Any, Counts],
    counts: tuple[str, ...],
) -> None:
    if not rows:
        return
    sqlite = bulk.is_sqlite(session)
    statement = _upsert_statement("sqlite" if sqlite else "postgresql", table, key_names, counts)
    # Sorted keys: concurrent writers (PostgreSQL) lock the rows in one order, so they cannot deadlock.
    zeros = repeat(0)
    if not sqlite:
        values = [(*key, *map(changed.get, counts, zeros)) for key, changed in sorted(rows.items())]
    else:  # the key's day as SQLite stores it (ISO text), formatted once per day
        days = bulk.DayTexts()
        values = [
            (days[key[0]], *key[1:], *map(changed.get, counts, zeros))
            for key, changed in sorted(rows.items())
        ]
    await bulk.executemany(session, statement, (*key_names, *counts), values, converted=sqlite)
