"""The shop's recent history, planned once and shared by the seeders that write it down.

A pure, deterministic plan (a seeded RNG and the day it ends on): storefront visits with their funnel
(page views, product views, cart, checkout, purchase) by marketing channel and campaign, the orders
those visits and the stores and marketplaces placed, and the marketing spend behind the traffic.
The customers seeder places the orders in customer-service; the analytics seeder tracks the visits
(naming the orders customer-service created) and records the spend. The shape real shops have:
weekly (weekend peak) and annual (Black Friday, December) seasonality, slow growth, campaigns that come
and go, a long tail of slow-selling SKUs, repeat buyers and one-off buyers, and cancellations and
refunds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

PLAN_SEED = 1207
HISTORY_DAYS = 150
VISITS_PER_DAY_AT_SCALE_1 = 14
CUSTOMERS_AT_SCALE_1 = 150
OFFLINE_ORDERS_PER_DAY_AT_SCALE_1 = 1.0
CURRENCY = "EUR"
DEFAULT_SKUS = tuple(f"SKU-{n:04d}" for n in range(1, 41))

# Traffic source -> (share of visits, conversion multiplier, campaigns with their share and daily spend).
CHANNELS: dict[str, tuple[float, float, tuple[tuple[str, float, int], ...]]] = {
    "google": (0.34, 1.0, (("brand", 0.4, 35), ("shopping", 0.6, 70))),
    "direct": (0.22, 1.3, (("", 1.0, 0),)),
    "facebook": (0.16, 0.6, (("retargeting", 0.5, 25), ("winter_sale", 0.5, 45))),
    "email": (0.12, 1.7, (("newsletter", 1.0, 6),)),
    "instagram": (0.10, 0.5, (("influencer", 1.0, 30),)),
    "affiliate": (0.06, 0.9, (("partners", 1.0, 12),)),
}
# Campaigns that only run part of the time: (first day, last day) counted back from the plan's end.
CAMPAIGN_WINDOWS = {"winter_sale": (40, 0), "influencer": (120, 75)}
WEEKDAY_FACTOR = (0.92, 0.88, 0.9, 0.95, 1.05, 1.22, 1.18)  # Monday .. Sunday


@dataclass(frozen=True)
class PlannedOrder:
    number: str
    customer: int
    """Index into the run's customers (taken modulo how many were created)."""
    placed_at: datetime
    channel: str
    """Sales channel: web, pos or marketplace."""
    lines: tuple[tuple[str, int], ...]
    statuses: tuple[str, ...]
    """Status changes after placement, in order (paid, shipped, delivered; or cancelled / refunded)."""


@dataclass(frozen=True)
class Visit:
    session_id: str
    anonymous_id: str
    started_at: datetime
    channel: str
    campaign: str
    customer: int | None
    """The signed-in customer (index), if any; a buyer identifies at checkout."""
    pages: int
    viewed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    checkout: bool
    order: int | None
    """Index into the plan's orders when the visit bought."""


@dataclass
class ShopHistory:
    start: date
    end: date
    skus: tuple[str, ...]
    prices: dict[str, Decimal]
    visits: list[Visit] = field(default_factory=list)
    orders: list[PlannedOrder] = field(default_factory=list)
    spend: list[tuple[date, str, str, Decimal]] = field(default_factory=list)
    """(day, channel, campaign, amount in CURRENCY)"""
    expenses: list[tuple[date, str, Decimal]] = field(default_factory=list)


def _season(day: date, end: date) -> float:
    """Weekly and annual shape, slow growth, and the Black Friday weekend."""
    annual = 1 + 0.3 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 350) / 365)
    growth = 0.8 + 0.3 * (1 - (end - day).days / HISTORY_DAYS)
    november_last = date(day.year, 11, 30)
    black_friday = november_last - timedelta(days=(november_last.weekday() - 4) % 7)
    peak = 2.2 if 0 <= (day - black_friday).days <= 3 else 1.0
    return WEEKDAY_FACTOR[day.weekday()] * annual * growth * peak


def _campaign_live(campaign: str, day: date, end: date) -> bool:
    window = CAMPAIGN_WINDOWS.get(campaign)
    return window is None or window[1] <= (end - day).days <= window[0]


def _zipf_weights(count: int, exponent: float = 1.15) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


def fallback_prices(skus: tuple[str, ...]) -> dict[str, Decimal]:
    """Prices when the catalog seeder did not run in this process (its own prices are used otherwise)."""
    rng = random.Random(PLAN_SEED)
    return {sku: Decimal(rng.randrange(990, 12_990)) / 100 for sku in skus}


def plan(
    scale: float, *, now: datetime | None = None, prices: dict[str, Decimal] | None = None
) -> ShopHistory:
    """The history of the HISTORY_DAYS days up to `now` (by default the start of the current hour, so
    seeders of one run plan the same history), nothing after it."""
    cutoff = now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = cutoff.date()
    start = end - timedelta(days=HISTORY_DAYS - 1)
    rng = random.Random(PLAN_SEED)
    skus = tuple(sorted(prices)) if prices else DEFAULT_SKUS
    price_of = prices or fallback_prices(skus)
    # A long tail: a shuffled Zipf popularity, so the best sellers are not simply the first SKUs.
    ranked = list(skus)
    rng.shuffle(ranked)
    weights = _zipf_weights(len(ranked))
    history = ShopHistory(start=start, end=end, skus=skus, prices=dict(price_of))
    customers = max(2, int(CUSTOMERS_AT_SCALE_1 * scale))
    next_new = 0
    buyers: list[int] = []  # one entry per order, so frequent buyers are drawn more often

    def buyer() -> int:
        nonlocal next_new
        if buyers and (rng.random() < 0.38 or next_new >= customers):
            return rng.choice(buyers)
        next_new += 1
        return next_new - 1

    def statuses(placed: datetime) -> tuple[str, ...]:
        age = (datetime.combine(end, datetime.min.time(), UTC) - placed).days
        roll = rng.random()
        if roll < 0.03:
            return ("cancelled",)
        if roll < 0.05 and age > 10:
            return ("paid", "shipped", "delivered", "refunded")
        if age < 2:
            return ("paid",) if roll < 0.6 else ()
        if age < 5:
            return ("paid", "shipped")
        return ("paid", "shipped", "delivered")

    def add_order(customer: int, placed_at: datetime, channel: str, basket: list[str]) -> int:
        lines = tuple((sku, 1 if rng.random() < 0.8 else rng.randint(2, 3)) for sku in dict.fromkeys(basket))
        history.orders.append(
            PlannedOrder(
                number=f"H-{len(history.orders) + 1:06d}",
                customer=customer,
                placed_at=placed_at,
                channel=channel,
                lines=lines,
                statuses=statuses(placed_at),
            )
        )
        buyers.append(customer)
        return len(history.orders) - 1

    channel_names = list(CHANNELS)
    channel_shares = [CHANNELS[c][0] for c in channel_names]
    for offset in range(HISTORY_DAYS):
        day = start + timedelta(days=offset)
        midnight = datetime.combine(day, datetime.min.time(), UTC)
        season = _season(day, end)
        visits = max(0, round(VISITS_PER_DAY_AT_SCALE_1 * scale * season * rng.uniform(0.85, 1.15)))
        for _ in range(visits):
            channel = rng.choices(channel_names, channel_shares)[0]
            live = [(c, s) for c, s, _ in CHANNELS[channel][2] if _campaign_live(c, day, end)]
            campaign = rng.choices([c for c, _ in live], [s for _, s in live])[0] if live else ""
            lift = CHANNELS[channel][1] * (1.25 if campaign == "winter_sale" else 1.0)
            # Evening-heavy hours of the day.
            hour = min(23, max(0, int(rng.gauss(15, 4.5))))
            started = midnight + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
            if started + timedelta(minutes=30) > cutoff:
                continue
            customer = rng.choice(buyers) if buyers and rng.random() < 0.25 else None
            viewed: list[str] = []
            if rng.random() < 0.72:
                viewed = rng.choices(ranked, weights, k=rng.randint(1, 4))
            added = [sku for sku in dict.fromkeys(viewed) if rng.random() < 0.13 * lift]
            removed = [sku for sku in added if rng.random() < 0.12]
            kept = [sku for sku in added if sku not in removed]
            checkout = bool(kept) and rng.random() < 0.55
            order = None
            if checkout and rng.random() < 0.62:
                if customer is None:
                    customer = buyer()
                placed_at = started + timedelta(minutes=rng.randint(4, 25))
                order = add_order(customer, placed_at, "web", kept)
            index = len(history.visits)
            history.visits.append(
                Visit(
                    session_id=f"seed-s{index:06d}",
                    anonymous_id=f"seed-a{rng.randrange(10**9):09d}",
                    started_at=started,
                    channel=channel,
                    campaign=campaign,
                    customer=customer,
                    pages=rng.randint(1, 4),
                    viewed=tuple(viewed),
                    added=tuple(added),
                    removed=tuple(removed),
                    checkout=checkout,
                    order=order,
                )
            )
        # Stores and marketplaces sell without a storefront visit.
        offline = OFFLINE_ORDERS_PER_DAY_AT_SCALE_1 * scale * season
        for _ in range(int(offline) + (1 if rng.random() < offline % 1 else 0)):
            placed_at = midnight + timedelta(hours=rng.randint(9, 19), minutes=rng.randrange(60))
            if placed_at > cutoff:
                continue
            basket = rng.choices(ranked, weights, k=rng.randint(1, 3))
            add_order(buyer(), placed_at, rng.choice(["pos", "pos", "marketplace"]), basket)
        for channel, (_, _, campaigns) in CHANNELS.items():
            for campaign, _, daily in campaigns:
                if daily and _campaign_live(campaign, day, end):
                    amount = Decimal(daily * scale * season * rng.uniform(0.8, 1.2)).quantize(Decimal("0.01"))
                    history.spend.append((day, channel, campaign, amount))
        if day.day == 1 or offset == 0:
            history.expenses.append((day, "rent", Decimal(round(900 * scale, 2))))
            history.expenses.append((day, "salaries", Decimal(round(2400 * scale, 2))))
    return history


def order_total(order: PlannedOrder, prices: dict[str, Decimal]) -> Decimal:
    return sum((prices[sku] * quantity for sku, quantity in order.lines), Decimal("0"))
