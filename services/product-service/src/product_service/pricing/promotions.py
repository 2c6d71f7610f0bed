"""Promotions: defined once, resolved into one effective price per SKU and channel, announced when they
start and end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.prices import PromotionEnded, PromotionStarted
from product_service.catalog import repository as catalog_repository
from product_service.catalog.service import MAX_CATEGORY_DEPTH
from product_service.common import as_utc, new_id, utc_now
from product_service.pricing import service as price_service
from product_service.pricing.models import Promotion
from product_service.pricing.schemas import (
    EffectivePriceRead,
    PromotionCreate,
    PromotionRead,
    PromotionStatus,
    PromotionUpdate,
)
from servicekit.db import Database
from servicekit.errors import Conflict, NotFound, PreconditionFailed, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.concurrency import check_if_match
from servicekit.http.pagination import Page, PageParams, cursor_key, make_page

log = logging.getLogger(__name__)

SCHEDULER_INTERVAL_S = 1.0


async def check_targets(session: AsyncSession, *, skus: list[str], category_ids: list[str]) -> None:
    """422 naming every SKU or category a promotion targets that does not exist (it would never apply)."""
    missing_skus = sorted(set(skus) - await catalog_repository.existing_skus(session, sorted(set(skus))))
    known_categories = {category.id for category in await catalog_repository.all_categories(session)}
    missing_categories = sorted(set(category_ids) - known_categories)
    problems = []
    if missing_skus:
        problems.append(f"unknown SKU(s): {', '.join(missing_skus[:20])}")
    if missing_categories:
        problems.append(f"unknown category id(s): {', '.join(missing_categories[:20])}")
    if problems:
        raise UnprocessableEntity(f"The promotion targets {'; '.join(problems)}.")


async def create_promotion(session: AsyncSession, *, body: PromotionCreate, actor: str) -> Promotion:
    await check_targets(session, skus=body.skus, category_ids=body.category_ids)
    percent = body.kind == "percentage"
    promotion = Promotion(
        id=new_id(),
        title=body.title,
        kind=body.kind,
        percent_bp=int(body.value * 100) if percent else None,
        amount_minor=None if percent else price_service.to_minor(body.value),
        currency=body.currency,
        skus=sorted(set(body.skus)),
        category_ids=sorted(set(body.category_ids)),
        channels=sorted(set(body.channels)),
        starts_at=as_utc(body.starts_at),
        ends_at=as_utc(body.ends_at),
        actor=actor,
        created_at=utc_now(),
    )
    session.add(promotion)
    await session.flush()
    return promotion


async def get_promotion(session: AsyncSession, *, promotion_id: str) -> Promotion:
    promotion = await session.get(Promotion, promotion_id)
    if promotion is None:
        raise NotFound(f"No promotion {promotion_id}.")
    return promotion


def status_of(promotion: Promotion, now: datetime) -> PromotionStatus:
    if as_utc(promotion.ends_at) <= now:
        return "ended"
    return "running" if as_utc(promotion.starts_at) <= now else "scheduled"


async def list_promotions(
    session: AsyncSession, *, status: PromotionStatus | None, page: PageParams
) -> Page[PromotionRead]:
    """One page of promotions, newest first, optionally only those scheduled, running or ended now."""
    key = cursor_key(page.cursor, ("id", str))
    now = utc_now()
    query = select(Promotion).order_by(col(Promotion.id).desc()).limit(page.limit + 1)
    if key is not None:
        query = query.where(col(Promotion.id) < key[0])
    if status == "ended":
        query = query.where(col(Promotion.ends_at) <= now)
    elif status == "running":
        query = query.where(col(Promotion.starts_at) <= now, col(Promotion.ends_at) > now)
    elif status == "scheduled":
        query = query.where(col(Promotion.starts_at) > now)
    rows = (await session.execute(query)).scalars().all()
    result = make_page(list(rows), page.limit, lambda promotion: {"id": promotion.id})
    return Page[PromotionRead](items=[to_read(p, now) for p in result.items], next_cursor=result.next_cursor)


RUNNING_CHANGES = frozenset({"title", "ends_at"})


async def update_promotion(
    session: AsyncSession, *, promotion: Promotion, changes: PromotionUpdate, if_match: str | None
) -> Promotion:
    """Change a promotion; 428 without If-Match, 412 when stale, 409 when it ended (or, running, when
    anything but its title and end would change), 422 when the result is not a valid promotion."""
    check_if_match(if_match, promotion.version)
    now = utc_now()
    state = status_of(promotion, now)
    fields = changes.model_dump(exclude_unset=True)
    if state == "ended":
        raise Conflict("The promotion has ended; it can no longer change.")
    if state == "running" and set(fields) - RUNNING_CHANGES:
        raise Conflict(
            "A running promotion can change only its title and end; end it and define a new one "
            "to change the discount."
        )
    merged = to_read(promotion, now).model_dump(include=set(PromotionCreate.model_fields)) | fields
    try:
        valid = PromotionCreate.model_validate(merged)
    except ValidationError as exc:
        raise UnprocessableEntity(f"The changed promotion is not valid: {exc.errors()[0]['msg']}") from None
    if "ends_at" in fields and as_utc(valid.ends_at) <= now:
        raise UnprocessableEntity("ends_at must be in the future; end the promotion to stop it now.")
    if {"skus", "category_ids"} & set(fields):
        await check_targets(session, skus=valid.skus, category_ids=valid.category_ids)
    values = _columns(valid)
    values = {name: value for name, value in values.items() if getattr(promotion, name) != value}
    if not values:
        return promotion
    result = await session.execute(
        update(Promotion)
        .where(col(Promotion.id) == promotion.id, col(Promotion.version) == promotion.version)
        .values({**values, "version": promotion.version + 1, "updated_at": now})
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise PreconditionFailed("The promotion was changed by someone else; read it again and retry.")
    await session.refresh(promotion)
    return promotion


def _columns(valid: PromotionCreate) -> dict[str, Any]:
    percent = valid.kind == "percentage"
    return {
        "title": valid.title,
        "percent_bp": int(valid.value * 100) if percent else None,
        "amount_minor": None if percent else price_service.to_minor(valid.value),
        "currency": valid.currency,
        "skus": sorted(set(valid.skus)),
        "category_ids": sorted(set(valid.category_ids)),
        "channels": sorted(set(valid.channels)),
        "starts_at": as_utc(valid.starts_at),
        "ends_at": as_utc(valid.ends_at),
    }


async def end_promotion(session: AsyncSession, *, promotion: Promotion, if_match: str | None) -> Promotion:
    """End a promotion now. A running one ends (its ended event follows); a scheduled one whose start
    was not announced is cancelled and never announced. 409 if it already ended; with If-Match, 412
    when stale. The version read is compared in the UPDATE, so of concurrent ends exactly one wins."""
    check_if_match(if_match, promotion.version, required=False)
    now = utc_now()
    if status_of(promotion, now) == "ended":
        raise Conflict("The promotion has already ended.")
    update_row = (
        update(Promotion)
        .where(col(Promotion.id) == promotion.id, col(Promotion.version) == promotion.version)
        .values(version=promotion.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result = None
    if status_of(promotion, now) == "scheduled":
        result = await session.execute(
            update_row.where(col(Promotion.started_announced).is_(False)).values(
                starts_at=now, ends_at=now, started_announced=True, ended_announced=True
            )
        )
    if result is None or getattr(result, "rowcount", 0) != 1:
        # Running, or its start was announced meanwhile: it ends, and its end is announced.
        result = await session.execute(update_row.values(ends_at=now))
    if getattr(result, "rowcount", 0) != 1:
        await session.refresh(promotion)
        if status_of(promotion, utc_now()) == "ended":
            raise Conflict("The promotion has already ended.")
        raise PreconditionFailed("The promotion was changed meanwhile; read it again and retry.")
    await session.refresh(promotion)
    return promotion


def to_read(promotion: Promotion, now: datetime | None = None) -> PromotionRead:
    value = (
        Decimal(promotion.percent_bp or 0) / 100
        if promotion.kind == "percentage"
        else price_service.to_amount(promotion.amount_minor or 0)
    )
    return PromotionRead(
        id=promotion.id,
        title=promotion.title,
        kind=promotion.kind,
        value=value.quantize(Decimal("0.01")),
        currency=promotion.currency,
        skus=promotion.skus,
        category_ids=promotion.category_ids,
        channels=promotion.channels,
        starts_at=as_utc(promotion.starts_at),
        ends_at=as_utc(promotion.ends_at),
        status=status_of(promotion, now or utc_now()),
        version=promotion.version,
    )


async def _categories_of(session: AsyncSession, sku: str) -> set[str]:
    """The SKU's product category and all its ancestors."""
    variant = await catalog_repository.variant(session, sku)
    if variant is None:
        return set()
    product = await catalog_repository.get_product(session, variant.product_id)
    result: set[str] = set()
    current = product.category_id if product is not None else None
    for _ in range(MAX_CATEGORY_DEPTH):
        if current is None or current in result:
            break
        result.add(current)
        category = await catalog_repository.get_category(session, current)
        current = category.parent_id if category is not None else None
    return result


def _discounted(base_minor: int, promotion: Promotion) -> int:
    if promotion.kind == "percentage":
        off = (Decimal(base_minor) * Decimal(promotion.percent_bp or 0) / Decimal(10_000)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return max(0, base_minor - int(off))
    return max(0, base_minor - (promotion.amount_minor or 0))


async def effective_price(
    session: AsyncSession, *, sku: str, currency: str, channel: str | None, at: datetime | None
) -> EffectivePriceRead:
    """The base price with the best running promotion applied (promotions do not stack)."""
    moment = as_utc(at) if at is not None else utc_now()
    base = await price_service.price_at(session, sku=sku, currency=currency, channel=channel, at=moment)
    running = (
        (
            await session.execute(
                select(Promotion).where(col(Promotion.starts_at) <= moment, col(Promotion.ends_at) > moment)
            )
        )
        .scalars()
        .all()
    )
    categories: set[str] | None = None
    best: tuple[int, Promotion] | None = None
    for promotion in running:
        if promotion.channels and (channel is None or channel not in promotion.channels):
            continue
        if promotion.kind == "amount" and promotion.currency != currency:
            continue
        if sku not in promotion.skus:
            if not promotion.category_ids:
                continue
            if categories is None:
                categories = await _categories_of(session, sku)
            if not categories.intersection(promotion.category_ids):
                continue
        amount = _discounted(base.amount_minor, promotion)
        if best is None or amount < best[0]:
            best = (amount, promotion)
    reference = None
    if best is not None:
        lowest = await price_service.lowest_in_window(
            session, sku=sku, currency=currency, channel=channel, at=moment
        )
        reference = lowest.lowest_amount
    return EffectivePriceRead(
        sku=sku,
        currency=currency,
        channel=channel,
        at=moment,
        base_amount=price_service.to_amount(base.amount_minor),
        effective_amount=price_service.to_amount(best[0] if best else base.amount_minor),
        promotion_id=best[1].id if best else None,
        reference_amount=reference,
    )


async def announce_due(session: AsyncSession) -> int:
    """Publish promotion started/ended events that are due; each is claimed with a conditional UPDATE,
    so two replicas never announce the same one twice."""
    now = utc_now()
    announced = 0
    due: Any = (
        (
            await session.execute(
                select(Promotion).where(
                    (col(Promotion.starts_at) <= now) & (col(Promotion.started_announced).is_(False))
                    | (col(Promotion.ends_at) <= now) & (col(Promotion.ended_announced).is_(False))
                )
            )
        )
        .scalars()
        .all()
    )
    for promotion in due:
        for flag, when, event_type in (
            ("started_announced", promotion.starts_at, "ecom.promotion.started.v1"),
            ("ended_announced", promotion.ends_at, "ecom.promotion.ended.v1"),
        ):
            if getattr(promotion, flag) or as_utc(when) > now:
                continue
            claimed = await session.execute(
                update(Promotion)
                .where(col(Promotion.id) == promotion.id, getattr(Promotion, flag).is_(False))
                .values({flag: True})
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue
            payload_class = PromotionStarted if event_type.endswith("started.v1") else PromotionEnded
            data = payload_class(
                promotion_id=promotion.id,
                kind=promotion.kind,
                skus=promotion.skus,
                category_ids=promotion.category_ids,
                channels=promotion.channels,
                starts_at=as_utc(promotion.starts_at),
                ends_at=as_utc(promotion.ends_at),
                percent=Decimal(promotion.percent_bp) / 100 if promotion.percent_bp is not None else None,
                amount=price_service.to_amount(promotion.amount_minor)
                if promotion.amount_minor is not None
                else None,
                currency=promotion.currency,
            )
            await outbox.add(session, build_event(event_type, data, subject=promotion.id))
            announced += 1
    return announced


async def run_scheduler(
    database: Database, stop: asyncio.Event, interval: float = SCHEDULER_INTERVAL_S
) -> None:
    """Announce promotions as they start and end, and scheduled prices as they take effect."""
    while not stop.is_set():
        try:
            async with database.session() as session:
                await announce_due(session)
                await price_service.announce_due(session)
        except Exception:
            log.exception("promotion scheduler round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def start_scheduler(app: FastAPI) -> None:
    runtime = app.state.runtime
    runtime.tasks.append(
        asyncio.create_task(run_scheduler(runtime.database, runtime.stop), name="promotions")
    )
