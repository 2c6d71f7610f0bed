"""RFM scores, named RFM segments and custom rule segments, evaluated from order facts as of a date.

Customers are those with at least one counted order up to the date (merged customers count as their
survivor). Customers who withdrew analytics consent are never profiled into a segment. Lists and exports
for a purpose (e.g. `email_marketing`) keep only customers who granted consent for it.
"""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from analytics_service.clv.service import predicted_clv_minor
from analytics_service.periods import DateRange, Granularity, period_end, periods
from analytics_service.segments.schemas import SegmentCreate, SegmentRules
from analytics_service.warehouse.models import (
    CustomerConsent,
    CustomerProfile,
    OrderFact,
    OrderLineFact,
    ProductFact,
    SegmentDefinition,
)
from analytics_service.warehouse.rollups import NOT_COUNTED_STATUSES
from servicekit.errors import Conflict, NotFound

RFM_SEGMENTS: dict[str, str] = {
    "new": "one order, placed recently (R >= 4, F = 1)",
    "champions": "bought recently and often, and spend the most (R >= 4, F >= 4, M >= 4)",
    "loyal": "buy often (F >= 4, R >= 3)",
    "at_risk": "used to buy often, not lately (R <= 2, F >= 3)",
    "hibernating": "bought rarely and long ago (R <= 2, F <= 2)",
    "need_attention": "every other customer",
}


@dataclass
class CustomerMetrics:
    customer_id: str
    recency_days: int
    frequency: int
    monetary_minor: int
    last_order: date
    r: int = 0
    f: int = 0
    m: int = 0
    channel: str | None = None
    categories: set[str] = field(default_factory=set)
    predicted_clv_minor: int | None = None  # loaded only for rules on predicted CLV


def rfm_segment(m: CustomerMetrics) -> str:
    if m.frequency == 1 and m.r >= 4:
        return "new"
    if m.r >= 4 and m.f >= 4 and m.m >= 4:
        return "champions"
    if m.f >= 4 and m.r >= 3:
        return "loyal"
    if m.r <= 2 and m.f >= 3:
        return "at_risk"
    if m.r <= 2 and m.f <= 2:
        return "hibernating"
    return "need_attention"


def _quintile_scores(values: list[float], *, higher_is_better: bool) -> list[int]:
    """Score 1..5 by the quintile of each value among all (ties share a score)."""
    ordered = sorted(values)
    n = len(ordered)
    scores = []
    for value in values:
        rank = (
            bisect.bisect_left(ordered, value)
            if higher_is_better
            else n - bisect.bisect_right(ordered, value)
        )
        scores.append(min(5, 1 + (5 * rank) // n))
    return scores


async def _withdrawn(connection: AsyncConnection, purpose: str) -> set[str]:
    rows = await connection.execute(
        select(col(CustomerConsent.customer_id)).where(
            col(CustomerConsent.purpose) == purpose, col(CustomerConsent.status) == "withdrawn"
        )
    )
    return {row[0] for row in rows.all()}


async def granted(connection: AsyncConnection, purpose: str) -> set[str]:
    rows = await connection.execute(
        select(col(CustomerConsent.customer_id)).where(
            col(CustomerConsent.purpose) == purpose, col(CustomerConsent.status) == "granted"
        )
    )
    return {row[0] for row in rows.all()}


async def metrics(
    connection: AsyncConnection, *, as_of: date, currency: str, with_details: bool = False
) -> list[CustomerMetrics]:
    """Every customer's recency, frequency and monetary value as of the date, with RFM scores."""
    statement = (
        select(
            col(OrderFact.customer_id),
            func.count(),
            func.sum(col(OrderFact.total_minor)),
            func.max(col(OrderFact.day)),
        )
        .where(
            col(OrderFact.placed).is_(True),
            col(OrderFact.status).notin_(list(NOT_COUNTED_STATUSES)),
            col(OrderFact.currency) == currency,
            col(OrderFact.customer_id).isnot(None),
            col(OrderFact.day) <= as_of,
        )
        .group_by(col(OrderFact.customer_id))
    )
    blocked = await _withdrawn(connection, "analytics")
    result = [
        CustomerMetrics(
            customer_id=customer_id,
            recency_days=(as_of - last).days,
            frequency=int(count),
            monetary_minor=int(total or 0),
            last_order=last,
        )
        for customer_id, count, total, last in (await connection.execute(statement)).all()
        if customer_id is not None and last is not None and customer_id not in blocked
    ]
    if not result:
        return result
    for m, r in zip(
        result, _quintile_scores([-x.recency_days for x in result], higher_is_better=True), strict=True
    ):
        m.r = r
    for m, f in zip(
        result, _quintile_scores([x.frequency for x in result], higher_is_better=True), strict=True
    ):
        m.f = f
    for m, s in zip(
        result, _quintile_scores([x.monetary_minor for x in result], higher_is_better=True), strict=True
    ):
        m.m = s
    if with_details:
        await _details(connection, result, as_of=as_of)
    return result


async def _details(connection: AsyncConnection, customers: list[CustomerMetrics], *, as_of: date) -> None:
    """Acquisition channel and categories bought, for rule segments."""
    by_id = {m.customer_id: m for m in customers}
    for customer_id, channel in (
        await connection.execute(
            select(col(CustomerProfile.customer_id), col(CustomerProfile.acquisition_channel))
        )
    ).all():
        if customer_id in by_id:
            by_id[customer_id].channel = channel
    bought = (
        select(col(OrderFact.customer_id), col(ProductFact.category_id))
        .join(OrderLineFact, col(OrderLineFact.order_id) == col(OrderFact.order_id))
        .join(ProductFact, col(ProductFact.sku) == col(OrderLineFact.sku))
        .where(
            col(OrderFact.placed).is_(True),
            col(OrderFact.status).notin_(list(NOT_COUNTED_STATUSES)),
            col(OrderFact.day) <= as_of,
            col(ProductFact.category_id).isnot(None),
        )
        .distinct()
    )
    for buyer, category in (await connection.execute(bought)).all():
        if buyer is not None and buyer in by_id and category is not None:
            by_id[buyer].categories.add(category)


def _on_predicted_clv(rules: SegmentRules) -> bool:
    return rules.predicted_clv_min is not None or rules.predicted_clv_max is not None


async def _predicted_clv(connection: AsyncConnection, customers: list[CustomerMetrics]) -> None:
    """Each customer's predicted CLV from the latest fit (whatever the segment's date: a fit predicts from
    the day it ran), in minor units; None for a customer the fit did not cover."""
    predicted = await predicted_clv_minor(connection, [m.customer_id for m in customers])
    for m in customers:
        m.predicted_clv_minor = predicted.get(m.customer_id)


def matches(m: CustomerMetrics, rules: SegmentRules, consenting: dict[str, set[str]]) -> bool:
    def within(value: float, low: float | None, high: float | None) -> bool:
        return (low is None or value >= low) and (high is None or value <= high)

    money = m.monetary_minor / 100
    if not (
        within(m.recency_days, rules.recency_days_min, rules.recency_days_max)
        and within(m.frequency, rules.frequency_min, rules.frequency_max)
        and within(money, rules.monetary_min, rules.monetary_max)
        and within(money, rules.clv_min, rules.clv_max)
    ):
        return False
    if _on_predicted_clv(rules) and (
        m.predicted_clv_minor is None
        or not within(m.predicted_clv_minor / 100, rules.predicted_clv_min, rules.predicted_clv_max)
    ):
        return False
    if rules.channels is not None and m.channel not in rules.channels:
        return False
    if rules.categories is not None and not m.categories & set(rules.categories):
        return False
    if rules.rfm_segments is not None and rfm_segment(m) not in rules.rfm_segments:
        return False
    return all(m.customer_id in consenting[purpose] for purpose in rules.consent or [])


async def definition(session: AsyncSession, name: str) -> SegmentDefinition | None:
    return await session.get(SegmentDefinition, name)


async def known_segment(connection: AsyncConnection, name: str) -> SegmentRules | None:
    """The rules of a segment: None for a built-in RFM segment; NotFound when there is none of the name."""
    if name in RFM_SEGMENTS:
        return None
    row = (
        await connection.execute(
            select(col(SegmentDefinition.rules)).where(col(SegmentDefinition.name) == name)
        )
    ).first()
    if row is None:
        raise NotFound(f"There is no segment named {name!r}.")
    return SegmentRules.model_validate(row[0])


@dataclass
class Population:
    """Every customer's metrics as of a date (`metrics`, with details for custom segments), and what
    choosing members among them has read so far: the customers granting each purpose, predicted CLV."""

    customers: list[CustomerMetrics]
    consenting: dict[str, set[str]] = field(default_factory=dict)
    clv_loaded: bool = False


async def members(
    connection: AsyncConnection, name: str, *, as_of: date, currency: str, purpose: str | None
) -> list[CustomerMetrics]:
    """The segment's members as of the date (only those who granted `purpose`, when given), by id."""
    rules = await known_segment(connection, name)
    everyone = await metrics(connection, as_of=as_of, currency=currency, with_details=rules is not None)
    return await choose(connection, Population(everyone), name, rules, purpose=purpose)


async def choose(
    connection: AsyncConnection,
    population: Population,
    name: str,
    rules: SegmentRules | None,
    *,
    purpose: str | None,
) -> list[CustomerMetrics]:
    """The members of the RFM segment `name` (`rules` None) or of the custom segment with these rules
    among the population, by id; several segments can be chosen from one population."""
    consenting = population.consenting
    for needed in {*(rules.consent or [] if rules else []), *([purpose] if purpose else [])}:
        if needed not in consenting:
            consenting[needed] = await granted(connection, needed)
    if rules is not None and _on_predicted_clv(rules) and not population.clv_loaded:
        await _predicted_clv(connection, population.customers)
        population.clv_loaded = True
    chosen = [
        m
        for m in population.customers
        if (rfm_segment(m) == name if rules is None else matches(m, rules, consenting))
        and (purpose is None or m.customer_id in consenting[purpose])
    ]
    return sorted(chosen, key=lambda m: m.customer_id)


async def counts(
    connection: AsyncConnection, name: str, *, span: DateRange, granularity: Granularity, currency: str
) -> list[tuple[date, int]]:
    """Members at the end of each period of the range."""
    result = []
    for start in periods(span, granularity):
        as_of = min(period_end(start, granularity), span.end)
        result.append(
            (as_of, len(await members(connection, name, as_of=as_of, currency=currency, purpose=None)))
        )
    return result


async def create(session: AsyncSession, body: SegmentCreate) -> SegmentDefinition:
    if body.name in RFM_SEGMENTS or await session.get(SegmentDefinition, body.name) is not None:
        raise Conflict(f"A segment named {body.name!r} exists already.")
    segment = SegmentDefinition(
        name=body.name,
        description=body.description,
        rules=body.rules.model_dump(mode="json", exclude_none=True),
        created_at=datetime.now(UTC),
    )
    session.add(segment)
    await session.flush()
    return segment


async def delete(session: AsyncSession, name: str) -> None:
    segment = await session.get(SegmentDefinition, name)
    if segment is None:
        raise NotFound(f"There is no custom segment named {name!r}.")
    await session.delete(segment)
    await session.flush()


def to_csv(rows: list[CustomerMetrics]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "rfm_segment"])
    for m in rows:
        writer.writerow(
            [
                m.customer_id,
                m.recency_days,
                m.frequency,
                f"{m.monetary_minor / 100:.2f}",
                m.r,
                m.f,
                m.m,
                rfm_segment(m),
            ]
        )
    return out.getvalue()


def as_json(m: CustomerMetrics) -> dict[str, Any]:
    return {
        "customer_id": m.customer_id,
        "recency_days": m.recency_days,
        "frequency": m.frequency,
        "monetary": round(m.monetary_minor / 100, 2),
        "r": m.r,
        "f": m.f,
        "m": m.m,
        "rfm_segment": rfm_segment(m),
    }
