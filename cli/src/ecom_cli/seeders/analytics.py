"""Seed analytics-service: months of storefront visits, their funnels, marketing spend and expenses.

The visits of the shop's planned history (ecom_cli.seeders.shop_history) go through analytics-service's
own track code (the validation of `POST /v1/track`, an outbox row per event), so the service publishes
them on ecom.activity.v1 when it runs and its consumers fold them into the rollups like live traffic.
A purchase's Order Completed names the order the customers seeder placed in customer-service (whose
ecom.orders.v1 events analytics-service consumes too). Spend and expenses go through the service's spend
code, as `POST /v1/spend` and `POST /v1/expenses` would write them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ecom_cli.seeders import shop_history
from ecom_cli.seeders.shop_history import CURRENCY
from ecom_cli.seeding import SeedContext, Seeder

TRACK_BATCH = 500
SPEND_BATCH = 1000
SEARCHES = ("hoodie", "wireless headphones", "mug", "lamp", "organic t-shirt", "charger", "shoes")


async def is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from analytics_service.warehouse.models import ActivityEvent, MarketingSpend
    from servicekit.db import Database
    from servicekit.events.models import OutboxMessage

    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            for table in (ActivityEvent, MarketingSpend, OutboxMessage):
                if await session.scalar(select(func.count()).select_from(table)):
                    return False
        return True
    except (OperationalError, ProgrammingError):
        return True
    finally:
        await database.dispose()


def visit_events(
    visit: shop_history.Visit,
    history: shop_history.ShopHistory,
    placed: dict[str, tuple[str, str]],
    customer_ids: dict[int, str],
) -> list[dict[str, Any]]:
    """The storefront events of one visit, Segment e-commerce spec names and properties."""
    events: list[dict[str, Any]] = []
    moment = visit.started_at
    customer = customer_ids.get(visit.customer) if visit.customer is not None else None
    order = history.orders[visit.order] if visit.order is not None else None
    order_ref = placed.get(order.number) if order is not None else None
    signed_in = customer if (order is None or visit.customer is not None) else None

    def add(name: str, customer_id: str | None = None, **properties: Any) -> None:
        nonlocal moment
        events.append(
            {
                "message_id": f"{visit.session_id}-{len(events)}",
                "event": name,
                "timestamp": moment.isoformat(),
                "session_id": visit.session_id,
                "anonymous_id": visit.anonymous_id,
                "customer_id": customer_id or signed_in,
                "channel": visit.channel,
                "campaign": visit.campaign or None,
                "properties": properties,
            }
        )
        moment += timedelta(seconds=20 + len(events) * 7)

    add("Page Viewed", path="/", referrer=visit.channel)
    for page in range(1, visit.pages):
        add("Page Viewed", path=f"/c/{page}")
    if visit.viewed and len(visit.session_id) % 3 == 0:
        add("Products Searched", query=SEARCHES[len(visit.viewed) % len(SEARCHES)])
    for sku in visit.viewed:
        add("Product Viewed", sku=sku, price=float(history.prices[sku]), currency=shop_history.CURRENCY)
    for sku in visit.added:
        add("Product Added", sku=sku, quantity=1, price=float(history.prices[sku]))
    for sku in visit.removed:
        add("Product Removed", sku=sku, quantity=1)
    if visit.added:
        add("Cart Viewed")
    buyer = order_ref[1] if order_ref is not None else None
    if visit.checkout:
        if buyer is not None and signed_in is None:
            add("Identify", customer_id=buyer)
        add("Checkout Started", customer_id=buyer)
    if order is not None and order_ref is not None:
        moment = max(moment, order.placed_at)
        revenue = shop_history.order_total(order, history.prices)
        add(
            "Order Completed",
            customer_id=buyer,
            order_id=order_ref[0],
            revenue=float(revenue),
            currency=shop_history.CURRENCY,
        )
    return events


async def seed(context: SeedContext) -> str:
    from analytics_service.config import Settings
    from analytics_service.spend import service as spend
    from analytics_service.spend.schemas import ExpenseCreate, SpendEntry
    from analytics_service.tracking import service as tracking
    from servicekit.db import Database

    settings = Settings(database_url=context.database_url)
    history = shop_history.plan(context.scale, prices=context.shared.get("prices"))
    placed: dict[str, tuple[str, str]] = context.shared.get("orders", {})
    # The customers seeder's customers, by their index in the plan (through the orders they placed).
    customer_ids = {
        order.customer: placed[order.number][1] for order in history.orders if order.number in placed
    }
    limits = tracking.TrackLimits(
        max_future=timedelta(seconds=settings.track_max_future_seconds),
        max_age=timedelta(days=settings.track_max_age_days),
        max_properties_bytes=settings.track_max_properties_bytes,
    )
    events = [
        event for visit in history.visits for event in visit_events(visit, history, placed, customer_ids)
    ]
    task = context.progress.add_task("storefront events", total=len(events))
    database = Database(context.database_url)
    accepted = rejected = 0
    try:
        for start in range(0, len(events), TRACK_BATCH):
            chunk = events[start : start + TRACK_BATCH]
            async with database.transaction() as transaction:  # as the track API writes them
                result = await tracking.track(transaction, batch=chunk, limits=limits)
            accepted += result.accepted
            rejected += len(result.rejected)
            if result.rejected:
                first = result.rejected[0]
                context.console.print(f"seed analytics: event {first.message_id} refused: {first.errors}")
            context.progress.advance(task, len(chunk))
        entries = [
            SpendEntry(day=day, channel=channel, campaign=campaign, amount=amount, currency=CURRENCY)
            for day, channel, campaign, amount in history.spend
        ]
        for start in range(0, len(entries), SPEND_BATCH):
            async with database.session() as session:
                await spend.record_spend(
                    session,
                    entries=entries[start : start + SPEND_BATCH],
                    reporting_currency=settings.reporting_currency,
                )
        async with database.session() as session:
            for day, category, amount in history.expenses:
                await spend.add_expense(
                    session,
                    body=ExpenseCreate(day=day, category=category, amount=amount, currency=CURRENCY),
                    reporting_currency=settings.reporting_currency,
                )
    finally:
        await database.dispose()
    bought = [history.orders[visit.order].number for visit in history.visits if visit.order is not None]
    named = sum(1 for number in bought if number in placed)
    note = ""
    if named < len(bought):
        note = f" ({len(bought) - named} purchases left out: their orders were not placed in this run)"
    days = (history.end - history.start).days + 1
    return (
        f"{len(history.visits)} storefront visits over {days} days, {accepted} events tracked"
        f"{f', {rejected} refused' if rejected else ''}, {named} purchases naming their orders{note}, "
        f"{len(entries)} marketing spend entries, {len(history.expenses)} expenses"
    )


SEEDER = Seeder(name="analytics", service="analytics", is_empty=is_empty, seed=seed, order=40)
