"""Pricing rules: append-only history, price at a date, the Omnibus 30-day lowest price, scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import build_event
from contracts.catalog.prices import PriceChanged, PriceScheduled
from product_service.catalog import repository as catalog_repository
from product_service.common import as_utc, utc_now
from product_service.pricing import repository
from product_service.pricing.models import ALL_CHANNELS, PriceAnnouncement, PriceRecord
from product_service.pricing.schemas import LowestPriceRead, PriceRead, PriceSet
from servicekit.errors import NotFound, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.pagination import Page, PageParams, cursor_key, make_page

OMNIBUS_WINDOW = timedelta(days=30)
BACKDATE_TOLERANCE = timedelta(minutes=5)
CENT = Decimal("0.01")


def to_minor(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_value())


def to_amount(minor: int) -> Decimal:
    return (Decimal(minor) * CENT).quantize(CENT)


def to_read(record: PriceRecord) -> PriceRead:
    amount = to_amount(record.amount_minor)
    cost = to_amount(record.cost_minor) if record.cost_minor is not None else None
    margin = (
        ((amount - cost) / amount).quantize(Decimal("0.0001")) if cost is not None and amount > 0 else None
    )
    return PriceRead(
        sku=record.sku,
        currency=record.currency,
        channel=record.channel or None,
        amount=amount,
        cost=cost,
        margin=margin,
        effective_from=as_utc(record.effective_from),
        created_at=as_utc(record.created_at),
        actor=record.actor,
        reason=record.reason,
        source=record.source,
    )


async def set_price(
    session: AsyncSession, *, sku: str, body: PriceSet, actor: str, allow_backdating: bool = False
) -> PriceRecord:
    """Append a price (now or scheduled); emits ecom.price.changed.v1. The API may not rewrite the past:
    an `effective_from` more than a few minutes ago is 422 (imports and seeding may backdate)."""
    if await catalog_repository.variant(session, sku) is None:
        raise NotFound(f"No variant with SKU {sku}.")
    now = utc_now()
    effective_from = as_utc(body.effective_from) if body.effective_from is not None else now
    if not allow_backdating and effective_from < now - BACKDATE_TOLERANCE:
        raise UnprocessableEntity("effective_from is in the past; the price history is append-only.")
    channel = body.channel or ALL_CHANNELS
    previous = await repository.price_at(
        session, sku=sku, currency=body.currency, channel=channel, at=effective_from
    )
    record = PriceRecord(
        sku=sku,
        currency=body.currency,
        channel=channel,
        amount_minor=to_minor(body.amount),
        cost_minor=to_minor(body.cost) if body.cost is not None else None,
        effective_from=effective_from,
        created_at=now,
        actor=actor,
        reason=body.reason,
        source=body.source,
    )
    session.add(record)
    await session.flush()
    if effective_from <= now:
        await announce(session, record, previous=previous, now=now)
    else:
        await outbox.add(
            session,
            build_event(
                "ecom.price.scheduled.v1",
                PriceScheduled(
                    sku=record.sku,
                    currency=record.currency,
                    channel=record.channel or None,
                    amount=to_amount(record.amount_minor),
                    effective_from=effective_from,
                    source=record.source,
                ),
                subject=record.sku,
            ),
        )
    return record


async def announce(
    session: AsyncSession, record: PriceRecord, *, previous: PriceRecord | None, now: datetime
) -> bool:
    """Publish ecom.price.changed.v1 for a price now in effect, once: the announcement row is the claim."""
    assert record.id is not None
    table: Any = PriceAnnouncement.__table__  # type: ignore[attr-defined]
    values = {"price_id": record.id, "announced_at": now}
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        statement = pg_insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    claimed = await session.execute(statement)
    if getattr(claimed, "rowcount", 0) != 1:
        return False
    await outbox.add(
        session,
        build_event(
            "ecom.price.changed.v1",
            PriceChanged(
                sku=record.sku,
                currency=record.currency,
                channel=record.channel or None,
                amount=to_amount(record.amount_minor),
                previous_amount=to_amount(previous.amount_minor) if previous is not None else None,
                cost=to_amount(record.cost_minor) if record.cost_minor is not None else None,
                effective_from=as_utc(record.effective_from),
                source=record.source,
            ),
            subject=record.sku,
        ),
    )
    return True


async def announce_due(session: AsyncSession, *, limit: int = 500) -> int:
    """Announce scheduled prices whose time has come (oldest first)."""
    now = utc_now()
    due = await repository.unannounced_due(session, now=now, limit=limit)
    announced = 0
    for record in due:
        previous = await repository.price_before(session, record=record)
        if await announce(session, record, previous=previous, now=now):
            announced += 1
    return announced


async def _channel_series(session: AsyncSession, *, sku: str, currency: str, channel: str | None) -> str:
    """A channel with prices of its own uses them; otherwise the all-channel prices apply."""
    if channel and await repository.has_series(session, sku=sku, currency=currency, channel=channel):
        return channel
    return ALL_CHANNELS


async def price_at(
    session: AsyncSession, *, sku: str, currency: str, channel: str | None, at: datetime | None
) -> PriceRecord:
    """The price in effect at `at` (default now); 404 when there is none."""
    series = await _channel_series(session, sku=sku, currency=currency, channel=channel)
    moment = as_utc(at) if at is not None else utc_now()
    record = await repository.price_at(session, sku=sku, currency=currency, channel=series, at=moment)
    if record is None:
        raise NotFound(f"No {currency} price of {sku} at {moment.isoformat()}.")
    return record


async def lowest_in_window(
    session: AsyncSession, *, sku: str, currency: str, channel: str | None, at: datetime | None
) -> LowestPriceRead:
    """The lowest price in effect during the 30 days before `at` (EU Omnibus: the reference price a
    reduction announced at `at` must be measured against); 404 when no price was in effect then."""
    series = await _channel_series(session, sku=sku, currency=currency, channel=channel)
    end = as_utc(at) if at is not None else utc_now()
    start = end - OMNIBUS_WINDOW
    in_effect_at_start = await repository.price_at(
        session, sku=sku, currency=currency, channel=series, at=start
    )
    changes = await repository.prices_between(
        session, sku=sku, currency=currency, channel=series, start=start, end=end
    )
    amounts = [record.amount_minor for record in changes]
    if in_effect_at_start is not None:
        amounts.append(in_effect_at_start.amount_minor)
    if not amounts:
        raise NotFound(f"No {currency} price of {sku} was in effect in the 30 days before {end.isoformat()}.")
    return LowestPriceRead(
        sku=sku,
        currency=currency,
        channel=series or None,
        lowest_amount=to_amount(min(amounts)),
        window_start=start,
        window_end=end,
    )


async def history(
    session: AsyncSession, *, sku: str, currency: str | None, channel: str | None, page: PageParams
) -> Page[PriceRead]:
    """One page of the SKU's price history, oldest first."""
    key = cursor_key(page.cursor, ("effective_from", datetime), ("id", int))
    records = await repository.history(
        session,
        sku=sku,
        currency=currency,
        channel=channel,
        after=(key[0], key[1]) if key else None,
        limit=page.limit + 1,
    )
    result = make_page(
        list(records), page.limit, lambda r: {"effective_from": as_utc(r.effective_from), "id": r.id}
    )
    return Page[PriceRead](items=[to_read(record) for record in result.items], next_cursor=result.next_cursor)
