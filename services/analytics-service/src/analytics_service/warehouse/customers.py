"""The customers projection: profiles, consent, survivors of merges, and per-customer order metrics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, case, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import bulk, rollups
from analytics_service.warehouse.models import (
    CustomerConsent,
    CustomerProfile,
    OrderFact,
    OrderLineFact,
)

ANALYTICS = "analytics"
MAX_MERGE_DEPTH = 20


async def ensure_profiles(
    session: AsyncSession, first_seen: dict[str, datetime]
) -> dict[str, CustomerProfile]:
    """The profiles of these customer ids, created when missing; `first_seen_at` kept the earliest."""
    if not first_seen:
        return {}
    found = {
        p.customer_id: p
        for p in await session.scalars(
            select(CustomerProfile).where(col(CustomerProfile.customer_id).in_(list(first_seen)))
        )
    }
    for customer_id, seen in first_seen.items():
        profile = found.get(customer_id)
        if profile is None:
            profile = CustomerProfile(customer_id=customer_id, first_seen_at=seen)
            session.add(profile)
            found[customer_id] = profile
        elif profile.first_seen_at is None or seen < profile.first_seen_at:
            profile.first_seen_at = seen
    await session.flush()
    return found


PROFILE_TABLE: Table = CustomerProfile.__table__  # type: ignore[attr-defined]
CONSENT_TABLE: Table = CustomerConsent.__table__  # type: ignore[attr-defined]


def _first_seen_statement(dialect: str) -> Any:
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(PROFILE_TABLE)
    held, seen = PROFILE_TABLE.c.first_seen_at, statement.excluded.first_seen_at
    return statement.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={"first_seen_at": case((or_(held.is_(None), seen < held), seen), else_=held)},
    )


_FIRST_SEEN = {dialect: _first_seen_statement(dialect) for dialect in ("sqlite", "postgresql")}
_FIRST_SEEN_COLUMNS = ("customer_id", "first_seen_at", "orders_count", "revenue_minor")


async def note_first_seen(session: AsyncSession, first_seen: dict[str, datetime]) -> None:
    """`ensure_profiles` in one upsert (for the activity fold, which needs no profile objects back)."""
    if not first_seen:
        return
    sqlite = bulk.is_sqlite(session)
    rows = [
        (customer_id, bulk.sqlite_moment(at) if sqlite else at, 0, 0)
        for customer_id, at in sorted(first_seen.items())
    ]
    statement = _FIRST_SEEN["sqlite" if sqlite else "postgresql"]
    await bulk.executemany(session, statement, _FIRST_SEEN_COLUMNS, rows, converted=sqlite)


async def survivors(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, str]:
    """Each id mapped to the customer that owns its data now (itself, or the survivor of its merge,
    following merges of survivors)."""
    result = {cid: cid for cid in customer_ids}
    pending = set(result)
    for _ in range(MAX_MERGE_DEPTH):
        if not pending:
            break
        rows = await bulk.select_in(
            session, PROFILE_TABLE, ["customer_id", "merged_into"], "customer_id", pending
        )
        moved = {cid: target for cid, target in rows if target is not None}
        if not moved:
            break
        for start, now in list(result.items()):
            if now in moved:
                result[start] = moved[now]
        pending = set(moved.values())
    return result


async def withdrawn(session: AsyncSession, customer_ids: Iterable[str], purpose: str = ANALYTICS) -> set[str]:
    """The customers among these who withdrew consent for `purpose`."""
    rows = await bulk.select_in(
        session,
        CONSENT_TABLE,
        ["customer_id"],
        "customer_id",
        set(customer_ids),
        where={"purpose": purpose, "status": "withdrawn"},
    )
    return {row[0] for row in rows}


async def order_lines(session: AsyncSession, order_ids: Iterable[str]) -> dict[str, list[OrderLineFact]]:
    ids = list(set(order_ids))
    lines: dict[str, list[OrderLineFact]] = {oid: [] for oid in ids}
    if ids:
        for line in await session.scalars(
            select(OrderLineFact)
            .where(col(OrderLineFact.order_id).in_(ids))
            .order_by(col(OrderLineFact.line_no))
        ):
            lines[line.order_id].append(line)
    return lines


def set_prior_order_days(orders: list[OrderFact], *, reporting_currency: str) -> None:
    """The prior-order days of one customer's placed orders (sorted by `placed_at`, then order id): the days
    of the two counted orders in the reporting currency before each such order, among all of them and
    among those of its channel; None on every other order."""
    chain: list[date] = []
    by_channel: dict[str, list[date]] = {}
    for order in orders:
        prior = second = channel_prior = channel_second = None
        if (
            order.status not in rollups.NOT_COUNTED_STATUSES
            and order.currency == reporting_currency
            and order.day is not None
        ):
            prior, second = _last_two(chain)
            chain.append(order.day)
            same_channel = by_channel.setdefault(rollups.order_channel_key(order)[1], [])
            channel_prior, channel_second = _last_two(same_channel)
            same_channel.append(order.day)
        for name, value in (
            ("prior_order_day", prior),
            ("second_prior_order_day", second),
            ("prior_channel_order_day", channel_prior),
            ("second_prior_channel_order_day", channel_second),
        ):
            if getattr(order, name) != value:
                setattr(order, name, value)


def _last_two(days: list[date]) -> tuple[date | None, date | None]:
    return (days[-1] if days else None, days[-2] if len(days) > 1 else None)


async def refresh(session: AsyncSession, customer_ids: Iterable[str], *, reporting_currency: str) -> None:
    """Recompute each customer's first order (`is_first` on its orders, moving new-customer counts in the
    rollups when it changes), the prior-order days of its counted orders in the reporting currency, and
    its profile metrics from its placed orders."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    profiles = {
        p.customer_id: p
        for p in await session.scalars(
            select(CustomerProfile).where(col(CustomerProfile.customer_id).in_(ids))
        )
    }
    orders = list(
        await session.scalars(
            select(OrderFact)
            .where(col(OrderFact.customer_id).in_(ids), col(OrderFact.placed).is_(True))
            .order_by(col(OrderFact.placed_at), col(OrderFact.order_id))
        )
    )
    by_customer: dict[str, list[OrderFact]] = {cid: [] for cid in ids}
    for order in orders:
        assert order.customer_id is not None
        by_customer[order.customer_id].append(order)
    delta = rollups.Contribution()
    for customer_id in ids:
        counted = [o for o in by_customer[customer_id] if o.status not in rollups.NOT_COUNTED_STATUSES]
        first = counted[0].order_id if counted else None
        for order in by_customer[customer_id]:
            should = order.order_id == first
            if order.is_first != should and order.day is not None and order.currency == reporting_currency:
                key = rollups.order_channel_key(order)
                if order.status not in rollups.NOT_COUNTED_STATUSES:
                    delta.channel[key]["new_customer_orders"] += 1 if should else -1
            order.is_first = should
        set_prior_order_days(by_customer[customer_id], reporting_currency=reporting_currency)
        profile = profiles.get(customer_id)
        if profile is None:
            profile = CustomerProfile(customer_id=customer_id)
            session.add(profile)
        in_currency = [o for o in counted if o.currency == reporting_currency]
        profile.orders_count = len(counted)
        profile.revenue_minor = sum(o.total_minor for o in in_currency)
        profile.first_order_at = counted[0].placed_at if counted else None
        profile.last_order_at = counted[-1].placed_at if counted else None
        profile.acquisition_channel = (counted[0].channel or counted[0].sales_channel) if counted else None
        profile.acquisition_campaign = (counted[0].campaign or "") if counted else None
        if profile.first_seen_at is None and counted:
            profile.first_seen_at = counted[0].placed_at
    await rollups.apply(session, delta)
    await session.flush()
