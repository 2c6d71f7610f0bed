"""Serving recommendations: neighbours and bestsellers from the stored fit, the customer's history and
consent, the catalog's status and the stock, read at request time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.fitting import data
from analytics_service.fitting.service import latest_run_in
from analytics_service.recommendations.cooccurrence import (
    Interaction,
    Neighbour,
    Recommendation,
    bought_together,
    recommend_for_customer,
)
from analytics_service.recommendations.models import PopularProduct, ProductNeighbour
from analytics_service.recommendations.schemas import RecommendationList, RecommendationRead
from analytics_service.warehouse.models import CustomerConsent, CustomerProfile
from servicekit.db import as_utc, utc_now
from servicekit.errors import NotFound

PERSONALISATION = "personalisation"
VIEWS_WINDOW_DAYS = 180
MAX_MERGE_HOPS = 10


async def _neighbours(session: AsyncSession, skus: set[str]) -> dict[str, list[Neighbour]]:
    if not skus:
        return {}
    rows = await session.execute(
        select(ProductNeighbour)
        .where(col(ProductNeighbour.sku).in_(sorted(skus)))
        .order_by(col(ProductNeighbour.sku), col(ProductNeighbour.rank))
    )
    found: dict[str, list[Neighbour]] = {}
    for (row,) in rows.all():
        found.setdefault(row.sku, []).append(Neighbour(row.neighbour_sku, row.score, row.customers))
    return found


async def _popular(session: AsyncSession) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(col(PopularProduct.sku), col(PopularProduct.customers)).order_by(col(PopularProduct.rank))
    )
    return [(sku, customers) for sku, customers in rows.all()]


def _read(items: list[Recommendation]) -> list[RecommendationRead]:
    return [
        RecommendationRead(
            sku=r.sku,
            score=round(r.score, 6),
            reason=r.reason,
            because_of=r.because_of,
            customers=r.customers,
        )
        for r in items
    ]


async def for_product(session: AsyncSession, *, sku: str, limit: int) -> RecommendationList:
    """What customers who bought `sku` also bought, published and in stock."""
    neighbours = await _neighbours(session, {sku})
    if not neighbours and not await data.sku_known(session, sku):
        raise NotFound(f"No SKU {sku} in the catalog or the sales.")
    candidates = {n.sku for n in neighbours.get(sku, [])}
    blocked = await data.unavailable(session, candidates)
    run = await latest_run_in(session, status="succeeded")
    items = bought_together(neighbours, sku, limit=limit, exclude=blocked)
    return RecommendationList(
        items=_read(items), personalised=False, fitted_at=run.finished_at if run else None
    )


async def _resolve_customer(session: AsyncSession, customer_id: str) -> CustomerProfile:
    """The customer, or the survivor it is merged into; 404 when analytics has never seen it."""
    profile = await session.get(CustomerProfile, customer_id)
    hops = 0
    while profile is not None and profile.merged_into and hops < MAX_MERGE_HOPS:
        profile = await session.get(CustomerProfile, profile.merged_into)
        hops += 1
    if profile is None:
        raise NotFound(f"No customer {customer_id} in analytics.")
    return profile


async def for_customer(session: AsyncSession, *, customer_id: str, limit: int) -> RecommendationList:
    """Personal recommendations (see cooccurrence.recommend_for_customer), or bestsellers only when the
    customer withdrew personalisation consent; never a SKU they bought, unpublished or out of stock."""
    profile = await _resolve_customer(session, customer_id)
    run = await latest_run_in(session, status="succeeded")
    fitted_at = run.finished_at if run else None
    popular = await _popular(session)
    consent = await session.get(CustomerConsent, (profile.customer_id, PERSONALISATION))
    now = utc_now()
    if consent is not None and consent.status == "withdrawn":
        blocked = await data.unavailable(session, {sku for sku, _ in popular})
        items = recommend_for_customer({}, [], now=now, limit=limit, exclude=blocked, popular=popular)
        return RecommendationList(
            items=_read(items),
            personalised=False,
            note="The customer withdrew personalisation consent: bestsellers, their history unread.",
            fitted_at=fitted_at,
        )
    bought, viewed = await data.customer_history(
        session, profile.customer_id, views_since=now - timedelta(days=VIEWS_WINDOW_DAYS)
    )
    bought_skus = {sku for sku, _ in bought}
    history = [Interaction(sku, "purchase", as_utc(at)) for sku, at in bought if at is not None]
    history += [Interaction(sku, "view", as_utc(at)) for sku, at in viewed]
    neighbours = await _neighbours(session, {event.sku for event in history})
    candidates = {n.sku for found in neighbours.values() for n in found} | {sku for sku, _ in popular}
    blocked = await data.unavailable(session, candidates - bought_skus)
    items = recommend_for_customer(
        neighbours, history, now=now, limit=limit, exclude=blocked, popular=popular
    )
    return RecommendationList(
        items=_read(items),
        personalised=bool(history),
        note=None if history else "No purchases or views yet: bestsellers.",
        fitted_at=fitted_at,
    )
