"""The events analytics-service consumes: one table from consumer name to its handlers.

Two consumers: storefront activity (high volume, folded a batch at a time) and the business facts of the
other services (orders, customers, catalog, prices, stock), so a burst of one never waits on the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from analytics_service.config import Settings
from analytics_service.warehouse import activity, catalog, merges, orders
from contracts import CloudEvent
from servicekit.events import ConsumerSpec, Handler, handle_many

ACTIVITY_CONSUMER = "analytics-service.activity"
FACTS_CONSUMER = "analytics-service.facts"
# Tracked events per fetch and transaction: the fold's statements and commit are per batch, so a larger
# batch costs less per event (bench/analytics); a batch is a few MB of memory and well under a second.
ACTIVITY_BATCH = 2000


class CurrencyHandler(Protocol):
    def __call__(
        self, session: AsyncSession, event: CloudEvent, *, reporting_currency: str
    ) -> Awaitable[None]: ...


def consumers(settings: Settings) -> list[ConsumerSpec]:
    rules = activity.IngestRules(
        reporting_currency=settings.reporting_currency, consent_mode=settings.consent_mode
    )
    currency = settings.reporting_currency

    async def fold_activity(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        await activity.fold(session, events, rules)

    def in_currency(handler: CurrencyHandler) -> Handler:
        async def handle(session: AsyncSession, event: CloudEvent) -> None:
            await handler(session, event, reporting_currency=currency)

        return handle

    return [
        ConsumerSpec(
            name=ACTIVITY_CONSUMER,
            handlers={"ecom.activity.tracked.v1": handle_many(fold_activity)},
            max_batch=ACTIVITY_BATCH,
            decode=activity.decode_record,
        ),
        ConsumerSpec(
            name=FACTS_CONSUMER,
            handlers={
                "ecom.order.placed.v1": in_currency(orders.on_order_placed),
                "ecom.order.status_changed.v1": in_currency(orders.on_order_status_changed),
                "ecom.customer.consent_changed.v1": merges.on_consent_changed,
                "ecom.customer.merged.v1": in_currency(merges.on_merged),
                "ecom.customer.unmerged.v1": in_currency(merges.on_unmerged),
                "ecom.product.created.v1": catalog.on_product_event,
                "ecom.product.updated.v1": catalog.on_product_event,
                "ecom.product.archived.v1": catalog.on_product_event,
                "ecom.price.changed.v1": in_currency(catalog.on_price_changed),
                "ecom.stock.changed.v1": catalog.on_stock_changed,
            },
        ),
    ]
