"""KPIs over a date range from the rollups (and order facts for customer-level figures), by period, with
the change against the previous period of the same length. Never reads raw events.

Without a channel or campaign filter the report reads `rollup_daily` (one row a day), with a filter
`rollup_daily_channel`; the repeat purchase rate is counted from the prior-order days of the order facts
(index searches, no grouping by customer), except with a campaign filter, where the campaign's orders
are grouped by customer."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, null, or_, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from analytics_service.kpis.definitions import DEFINITIONS_VERSION, KPI_NAMES
from analytics_service.kpis.hooks import predicted_clv_provider
from analytics_service.kpis.schemas import KpiPeriod, KpiReport, KpiValue
from analytics_service.periods import DateRange, Granularity, period_end, period_start, periods
from analytics_service.warehouse.models import (
    DailyChannelRollup,
    DailyRollup,
    Expense,
    MarketingSpend,
    OrderFact,
)
from analytics_service.warehouse.rollups import NOT_COUNTED_STATUSES

ROLLUP_SUMS = (
    "sessions",
    "sessions_added",
    "sessions_purchased",
    "orders",
    "new_customer_orders",
    "customer_orders",
    "revenue_minor",
    "cogs_minor",
)
WHOLE_RANGE_ONLY = ("repeat_purchase_rate", "historical_clv")


@dataclass(frozen=True)
class Filters:
    channel: str | None = None
    campaign: str | None = None
    currency: str = "EUR"

    @property
    def unfiltered(self) -> bool:
        return self.channel is None and self.campaign is None


def _rollup(filters: Filters) -> type[DailyRollup] | type[DailyChannelRollup]:
    """The per-day totals when no channel or campaign is asked for, else the per-channel rows."""
    return DailyRollup if filters.unfiltered else DailyChannelRollup


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _money(minor: float) -> float:
    return round(minor / 100, 2)


def derive(sums: Counter[str]) -> dict[str, int | float | None]:
    """The KPIs of one period from its summed counts (money in minor units)."""
    revenue = sums["revenue_minor"]
    net = revenue - sums["cogs_minor"] - sums["spend_minor"] - sums["expenses_minor"]
    added = sums["sessions_added"]
    abandonment = None if not added else round(max(0.0, 1 - sums["sessions_purchased"] / added), 6)
    return {
        "sessions": sums["sessions"],
        "conversion_rate": _ratio(sums["sessions_purchased"], sums["sessions"]),
        "cart_abandonment_rate": abandonment,
        "orders": sums["orders"],
        "revenue": _money(revenue),
        "average_order_value": _money(revenue / sums["orders"]) if sums["orders"] else None,
        "new_customers": sums["new_customer_orders"],
        "returning_customer_orders": sums["orders"] - sums["new_customer_orders"],
        "marketing_spend": _money(sums["spend_minor"]),
        "customer_acquisition_cost": (
            _money(sums["spend_minor"] / sums["new_customer_orders"]) if sums["new_customer_orders"] else None
        ),
        "cost_of_goods": _money(sums["cogs_minor"]),
        "expenses": _money(sums["expenses_minor"]),
        "net_profit": _money(net),
        "net_profit_margin": _ratio(net, revenue),
    }


EARLIER = None  # the key of `daily_sums`' row for all days before the range (`with_earlier`)


async def daily_sums(
    connection: AsyncConnection, span: DateRange, filters: Filters, *, with_earlier: bool = False
) -> dict[date | None, Counter[str]]:
    """Per day: the rollup sums, spend and expenses; with `with_earlier`, also the rollup sums of every day
    before the range under the key None (historical CLV needs revenue and new customers to date). One
    statement: the grouped queries joined by UNION ALL, each row tagged with the part it comes from."""
    table = _rollup(filters)
    sums = [func.sum(getattr(table, name)) for name in ROLLUP_SUMS]
    zeros = [literal(0)] * (len(ROLLUP_SUMS) - 1)
    rollup = (
        select(literal("rollup"), col(table.day), *sums)
        .where(col(table.day) >= span.start, col(table.day) <= span.end)
        .group_by(col(table.day))
    )
    earlier = select(literal("rollup"), cast(null(), Date), *sums).where(col(table.day) < span.start)
    spend = (
        select(literal("spend"), col(MarketingSpend.day), func.sum(col(MarketingSpend.amount_minor)), *zeros)
        .where(
            col(MarketingSpend.day) >= span.start,
            col(MarketingSpend.day) <= span.end,
            col(MarketingSpend.currency) == filters.currency,
        )
        .group_by(col(MarketingSpend.day))
    )
    if filters.channel is not None:
        rollup = rollup.where(col(DailyChannelRollup.channel) == filters.channel)
        earlier = earlier.where(col(DailyChannelRollup.channel) == filters.channel)
        spend = spend.where(col(MarketingSpend.channel) == filters.channel)
    if filters.campaign is not None:
        rollup = rollup.where(col(DailyChannelRollup.campaign) == filters.campaign)
        earlier = earlier.where(col(DailyChannelRollup.campaign) == filters.campaign)
        spend = spend.where(col(MarketingSpend.campaign) == filters.campaign)
    parts = [rollup, spend]
    if with_earlier:
        parts.append(earlier)
    if filters.unfiltered:
        parts.append(
            select(literal("expenses"), col(Expense.day), func.sum(col(Expense.amount_minor)), *zeros)
            .where(
                col(Expense.day) >= span.start,
                col(Expense.day) <= span.end,
                col(Expense.currency) == filters.currency,
            )
            .group_by(col(Expense.day))
        )
    days: dict[date | None, Counter[str]] = {}
    for part, day, *values in (await connection.execute(union_all(*parts))).all():
        counts = days.setdefault(day, Counter())
        if part == "rollup":
            counts.update({name: int(value or 0) for name, value in zip(ROLLUP_SUMS, values, strict=True)})
        else:
            counts[f"{part}_minor"] += int(values[0] or 0)
    return days


def _counted_orders(filters: Filters) -> list[Any]:
    conditions = [
        col(OrderFact.placed).is_(True),
        col(OrderFact.status).notin_(list(NOT_COUNTED_STATUSES)),
        col(OrderFact.currency) == filters.currency,
        col(OrderFact.customer_id).isnot(None),
    ]
    return conditions


async def repeat_purchase_rates(
    connection: AsyncConnection,
    span: DateRange,
    before: DateRange,
    filters: Filters,
    *,
    customer_orders: tuple[int, int],
) -> tuple[float | None, float | None]:
    """Customers with 2+ counted orders / customers with 1+, in the range and in the previous period.

    Unfiltered, from the prior-order days: of a customer's counted orders in a range, exactly one has
    its prior order before the range (or none), and exactly one has its prior order in the range and the
    one before that outside (when it has 2+ there). So customers with 1+ = orders with a customer
    (`customer_orders`, from the rollup) - orders whose prior order is in the range, and customers with
    2+ = orders whose prior order is in the range and whose second prior is not: an index search per day
    of both periods. With a channel filter the same from the prior-order days among the customer's
    orders of that channel (and the channel's customer orders); with a campaign filter the filtered orders
    are grouped by customer instead (prior orders per campaign are not stored)."""
    if filters.campaign is None:
        return await repeat_rates_from_prior_orders(
            connection, span, before, customer_orders, channel=filters.channel
        )
    return await repeat_rates_by_customer(connection, span, before, filters)


async def repeat_rates_by_customer(
    connection: AsyncConnection, span: DateRange, before: DateRange, filters: Filters
) -> tuple[float | None, float | None]:
    """The repeat purchase rates of both periods from the counted orders grouped by customer."""
    day = col(OrderFact.day)
    per_customer = select(
        col(OrderFact.customer_id),
        func.sum(case((day >= span.start, 1), else_=0)).label("now"),
        func.sum(case((day <= before.end, 1), else_=0)).label("before"),
    ).where(*_counted_orders(filters), day >= before.start, day <= span.end)
    if filters.channel is not None:
        per_customer = per_customer.where(
            func.coalesce(col(OrderFact.channel), col(OrderFact.sales_channel)) == filters.channel
        )
    if filters.campaign is not None:
        per_customer = per_customer.where(func.coalesce(col(OrderFact.campaign), "") == filters.campaign)
    grouped = per_customer.group_by(col(OrderFact.customer_id)).subquery()

    def at_least(column: Any, n: int) -> Any:
        return func.sum(case((column >= n, 1), else_=0))

    row = (
        await connection.execute(
            select(
                at_least(grouped.c.now, 1),
                at_least(grouped.c.now, 2),
                at_least(grouped.c.before, 1),
                at_least(grouped.c.before, 2),
            )
        )
    ).one()
    return _ratio(float(row[1] or 0), float(row[0] or 0)), _ratio(float(row[3] or 0), float(row[2] or 0))


async def repeat_rates_from_prior_orders(
    connection: AsyncConnection,
    span: DateRange,
    before: DateRange,
    customer_orders: tuple[int, int],
    *,
    channel: str | None = None,
) -> tuple[float | None, float | None]:
    """The repeat purchase rates of both periods from the prior-order days (of one channel's orders, with
    `channel`), given each period's counted orders with a customer id (of that channel)."""
    day = col(OrderFact.day)
    prior, second = col(OrderFact.prior_order_day), col(OrderFact.second_prior_order_day)
    conditions: list[Any] = []
    if channel is not None:
        prior, second = col(OrderFact.prior_channel_order_day), col(OrderFact.second_prior_channel_order_day)
        conditions.append(
            func.coalesce(col(OrderFact.channel), col(OrderFact.sales_channel), "unknown") == channel
        )

    def in_period(period: DateRange) -> Any:
        # Orders whose prior order is in the period and which are in it themselves (prior <= day). The
        # prior days are listed (not a range) so the index (prior_order_day, day) is searched once per day
        # for `day <= end`, reading only such orders, not every later order of the period's customers.
        days = [period.start + timedelta(days=n) for n in range(period.days)]
        return (
            select(
                func.count().label("continued"),
                func.sum(case((or_(second.is_(None), second < period.start), 1), else_=0)).label("twice"),
            )
            .where(prior.in_(days), day <= period.end, *conditions)
            .subquery()
        )

    now, earlier = in_period(span), in_period(before)
    row = (
        await connection.execute(
            select(now.c.continued, now.c.twice, earlier.c.continued, earlier.c.twice).select_from(
                now.join(earlier, true())
            )
        )
    ).one()
    rates = []
    for orders, continued, twice in (
        (customer_orders[0], row[0], row[1]),
        (customer_orders[1], row[2], row[3]),
    ):
        rates.append(_ratio(float(twice or 0), float(orders - int(continued or 0))))
    return rates[0], rates[1]


def historical_clvs(
    earlier: Counter[str], previous: Counter[str], current: Counter[str]
) -> tuple[float | None, float | None]:
    """Revenue to date / customers acquired to date, at the range's end and at the previous period's end,
    from the rollup sums of the days before the previous period, of the previous period and of the range
    (every counted order's revenue, one new customer per first order)."""
    before = earlier + previous
    to_date = before + current
    return tuple(  # type: ignore[return-value]
        _money(sums["revenue_minor"] / sums["new_customer_orders"]) if sums["new_customer_orders"] else None
        for sums in (to_date, before)
    )


def _change(value: int | float | None, previous: int | float | None) -> KpiValue:
    change = None if value is None or previous is None else round(value - previous, 6)
    ratio = None if change is None or not previous else round(change / abs(previous), 6)
    return KpiValue(value=value, previous=previous, change=change, change_ratio=ratio)


async def report(
    connection: AsyncConnection, span: DateRange, *, granularity: Granularity, filters: Filters
) -> KpiReport:
    before = span.previous()
    days = await daily_sums(connection, DateRange(before.start, span.end), filters, with_earlier=True)
    earlier = days.pop(EARLIER, Counter())
    current, previous = Counter[str](), Counter[str]()
    buckets: dict[date, Counter[str]] = {start: Counter() for start in periods(span, granularity)}
    for day, sums in days.items():
        assert day is not None
        if day >= span.start:
            current.update(sums)
            buckets[period_start(day, granularity)].update(sums)
        else:
            previous.update(sums)
    now_values, before_values = derive(current), derive(previous)
    repeat = await repeat_purchase_rates(
        connection,
        span,
        before,
        filters,
        customer_orders=(current["customer_orders"], previous["customer_orders"]),
    )
    now_values["repeat_purchase_rate"], before_values["repeat_purchase_rate"] = repeat
    clv = historical_clvs(earlier, previous, current)
    now_values["historical_clv"], before_values["historical_clv"] = clv
    names = list(KPI_NAMES)
    provider = predicted_clv_provider()
    if provider is not None:
        names.append("predicted_clv")
        for values, at in ((now_values, span.end), (before_values, before.end)):
            values["predicted_clv"] = await provider.average_predicted_clv(
                connection, as_of=at, channel=filters.channel, campaign=filters.campaign
            )
    series = []
    for start, sums in buckets.items():
        values = derive(sums)
        series.append(
            KpiPeriod(
                start=max(start, span.start),
                end=min(period_end(start, granularity), span.end),
                values={name: values.get(name) for name in names if name not in WHOLE_RANGE_ONLY},
            )
        )
    return KpiReport(
        start=span.start,
        end=span.end,
        previous_start=before.start,
        previous_end=before.end,
        granularity=granularity,
        channel=filters.channel,
        campaign=filters.campaign,
        currency=filters.currency,
        definitions_version=DEFINITIONS_VERSION,
        kpis={name: _change(now_values.get(name), before_values.get(name)) for name in names},
        series=series,
    )


def to_csv(result: KpiReport) -> str:
    """One row per period, then the whole range and the previous period."""
    names = list(result.kpis)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "start", "end", *names])
    for entry in result.series:
        writer.writerow(["period", entry.start, entry.end, *[_cell(entry.values.get(n)) for n in names]])
    writer.writerow(["total", result.start, result.end, *[_cell(result.kpis[n].value) for n in names]])
    writer.writerow(
        [
            "previous",
            result.previous_start,
            result.previous_end,
            *[_cell(result.kpis[n].previous) for n in names],
        ]
    )
    return out.getvalue()


def _cell(value: int | float | None) -> str:
    return "" if value is None else str(value)
