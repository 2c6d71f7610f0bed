"""Helpers of analytics-service's tests: event builders, delivering events straight to the consumers'
handlers (as the consumer runner calls them), and reading rollups."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from analytics_service.config import Settings
from analytics_service.events import consumers
from analytics_service.warehouse import rollups
from analytics_service.warehouse.models import DailyChannelRollup, DailyProductRollup, DailyRollup
from analytics_service.warehouse.recompute import rollups_from_scratch
from contracts import CloudEvent, build_event
from contracts.catalog.activity import ActivityTracked
from contracts.catalog.customers import CustomerConsentChanged, CustomerMerged, CustomerUnmerged
from contracts.catalog.orders import OrderLine, OrderPlaced, OrderStatusChanged
from contracts.catalog.prices import PriceChanged
from contracts.catalog.products import ProductCreated
from servicekit.db import Database
from servicekit.events import BatchHandler

_ids = itertools.count(1)
DAY = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def at(days: float = 0, hours: float = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hours)


def tracked(
    event: str,
    *,
    session: str | None,
    when: datetime,
    anonymous: str | None = None,
    customer: str | None = None,
    channel: str = "google",
    campaign: str = "",
    message_id: str | None = None,
    **properties: Any,
) -> CloudEvent:
    data = ActivityTracked(
        message_id=message_id or unique("m"),
        event=event,  # type: ignore[arg-type]
        timestamp=when,
        received_at=when,
        session_id=session,
        anonymous_id=anonymous,
        customer_id=customer,
        channel=channel,
        campaign=campaign,
        properties=properties,
    )
    return build_event("ecom.activity.tracked.v1", data, subject=session or anonymous or customer or "x")


def placed(
    order_id: str,
    customer: str,
    when: datetime,
    lines: Sequence[tuple[str, int, str]],
    *,
    channel: str = "web",
    currency: str = "EUR",
    discount: str = "0",
    location: str | None = None,
) -> CloudEvent:
    order_lines = [
        OrderLine(sku=s, quantity=q, unit_price=Decimal(p), currency=currency) for s, q, p in lines
    ]
    subtotal = sum((line.unit_price * line.quantity for line in order_lines), Decimal("0"))
    data = OrderPlaced(
        order_id=order_id,
        order_number=f"N-{order_id}",
        customer_id=customer,
        channel=channel,
        location_id=location,
        currency=currency,
        lines=order_lines,
        subtotal=subtotal,
        discount_total=Decimal(discount),
        total=subtotal - Decimal(discount),
        placed_at=when,
    )
    return build_event("ecom.order.placed.v1", data, subject=order_id)


def status(order_id: str, customer: str, new: str, when: datetime, previous: str = "placed") -> CloudEvent:
    data = OrderStatusChanged(
        order_id=order_id,
        order_number=f"N-{order_id}",
        customer_id=customer,
        status=new,  # type: ignore[arg-type]
        previous_status=previous,  # type: ignore[arg-type]
        changed_at=when,
        lines=[],
    )
    return build_event("ecom.order.status_changed.v1", data, subject=order_id)


def consent(customer: str, purpose: str, state: str, when: datetime) -> CloudEvent:
    data = CustomerConsentChanged(
        customer_id=customer,
        purpose=purpose,  # type: ignore[arg-type]
        status=state,  # type: ignore[arg-type]
        source="preference_center",
        lawful_basis="consent",
        changed_at=when,
    )
    return build_event("ecom.customer.consent_changed.v1", data, subject=customer)


def merged(survivor: str, others: list[str], merge_id: str, when: datetime) -> CloudEvent:
    data = CustomerMerged(
        merge_id=merge_id,
        survivor_customer_id=survivor,
        merged_customer_ids=others,
        automatic=False,
        merged_at=when,
    )
    return build_event("ecom.customer.merged.v1", data, subject=survivor)


def unmerged(survivor: str, restored: list[str], merge_id: str, when: datetime) -> CloudEvent:
    data = CustomerUnmerged(
        merge_id=merge_id, survivor_customer_id=survivor, restored_customer_ids=restored, unmerged_at=when
    )
    return build_event("ecom.customer.unmerged.v1", data, subject=survivor)


def product(sku: str, category: str, *, version: int = 1, status: str = "active") -> CloudEvent:
    data = ProductCreated(
        product_id=f"p-{sku}", status=status, category_id=category, skus=[sku], version=version
    )
    return build_event("ecom.product.created.v1", data, subject=f"p-{sku}")


def price(sku: str, amount: str, cost: str | None, when: datetime, currency: str = "EUR") -> CloudEvent:
    data = PriceChanged(
        sku=sku,
        currency=currency,
        amount=Decimal(amount),
        cost=Decimal(cost) if cost is not None else None,
        effective_from=when,
        source="api",
    )
    return build_event("ecom.price.changed.v1", data, subject=sku)


class Deliverer:
    """Hands events to the service's consumer handlers like the consumer runner does: one transaction
    per call, consecutive events of one type to a batch handler together."""

    def __init__(self, database: Database, settings: Settings | None = None) -> None:
        self.database = database
        self.handlers: dict[str, Any] = {}
        for spec in consumers(settings or Settings(database_url=database.url)):
            self.handlers.update(spec.handlers)

    async def __call__(self, events: Iterable[CloudEvent], *, batch: int = 50) -> None:
        events = list(events)
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            async with self.database.session() as session:
                for event_type, group in itertools.groupby(chunk, key=lambda e: e.type):
                    handler = self.handlers[event_type]
                    if isinstance(handler, BatchHandler):
                        await handler.handle_many(session, list(group))
                    else:
                        for event in group:
                            await handler(session, event)


async def _rollup(
    database: Database, model: Any, keys: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, int]]:
    """A rollup table as {key: {column: value}}, zero columns and all-zero rows left out."""
    async with database.session() as session:
        rows = (await session.scalars(select(model))).all()
    result = {}
    for row in rows:
        counts = {k: v for k, v in row.model_dump().items() if k not in keys and v}
        if counts:
            result[tuple(getattr(row, k) for k in keys)] = counts
    return result


async def channel_rollup(database: Database) -> dict[tuple[Any, ...], dict[str, int]]:
    return await _rollup(database, DailyChannelRollup, ("day", "channel", "campaign"))


async def product_rollup(database: Database) -> dict[tuple[Any, ...], dict[str, int]]:
    return await _rollup(database, DailyProductRollup, ("day", "sku", "location_id"))


async def daily_rollup(database: Database) -> dict[tuple[Any, ...], dict[str, int]]:
    return await _rollup(database, DailyRollup, ("day",))


async def recomputed(database: Database) -> rollups.Contribution:
    """Both rollups computed from scratch from the facts (warehouse/recompute.py)."""
    settings = Settings(database_url=database.url)
    async with database.read() as connection:
        return await rollups_from_scratch(connection, reporting_currency=settings.reporting_currency)


def nonzero(
    rollup: Mapping[tuple[Any, ...], Mapping[str, int]], keep: Callable[[tuple[Any, ...]], bool]
) -> dict[tuple[Any, ...], dict[str, int]]:
    """The rows of a computed rollup whose key `keep` admits, as `channel_rollup` and the others read
    the tables: zero columns and all-zero rows left out."""
    return {k: {n: v for n, v in c.items() if v} for k, c in rollup.items() if keep(k) and any(c.values())}
