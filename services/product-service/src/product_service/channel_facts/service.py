"""The channel facts of a page of products, in product-id order: each product as its events describe it,
its SKUs' prices in effect now and their stock per location (sync-service rebuilds a channel's listings
from them when its projection of the events is missing or stale)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.catalog import repository as catalog_repository
from product_service.catalog.models import Product, Variant
from product_service.catalog.service import channel_details
from product_service.channel_facts.schemas import PriceFact, ProductFacts, StockFact
from product_service.inventory.models import Location, StockLevel
from product_service.pricing.models import ALL_CHANNELS, PriceRecord
from product_service.pricing.service import to_amount


async def _prices_in_effect(session: AsyncSession, skus: Sequence[str], at: datetime) -> list[PriceFact]:
    """Per SKU, currency and channel: the latest row effective by `at` (a later-recorded row wins a tie)."""
    rows = await session.execute(
        select(PriceRecord)
        .where(col(PriceRecord.sku).in_(list(skus)), col(PriceRecord.effective_from) <= at)
        .order_by(col(PriceRecord.effective_from), col(PriceRecord.id))
    )
    latest: dict[tuple[str, str, str], PriceRecord] = {}
    for record in rows.scalars():
        latest[(record.sku, record.currency, record.channel)] = record
    return [
        PriceFact(
            sku=record.sku,
            currency=record.currency,
            channel=record.channel if record.channel != ALL_CHANNELS else None,
            amount=to_amount(record.amount_minor),
            effective_from=record.effective_from,
        )
        for _, record in sorted(latest.items())
    ]


async def _stock(session: AsyncSession, skus: Sequence[str]) -> list[StockFact]:
    rows = await session.execute(
        select(StockLevel, col(Location.code))
        .join(Location, col(Location.id) == col(StockLevel.location_id))
        .where(col(StockLevel.sku).in_(list(skus)))
        .order_by(col(StockLevel.sku), col(StockLevel.location_id))
    )
    return [
        StockFact(
            sku=level.sku,
            location_id=level.location_id,
            location_code=code,
            available=max(level.on_hand - level.reserved, 0),
            updated_at=level.updated_at,
        )
        for level, code in rows.all()
    ]


async def facts_page(
    session: AsyncSession, *, limit: int, after_id: str | None, at: datetime
) -> tuple[list[ProductFacts], bool]:
    """Up to `limit` products after `after_id` with their facts, and whether more follow."""
    products: Sequence[Product] = await catalog_repository.list_products(
        session, limit=limit, after_id=after_id, status=None, category_ids=None
    )
    more = len(products) > limit
    products = products[:limit]
    ids = [product.id for product in products]
    variants: dict[str, list[Variant]] = {}
    if ids:
        rows = await session.execute(
            select(Variant).where(col(Variant.product_id).in_(ids)).order_by(col(Variant.sku))
        )
        for variant in rows.scalars():
            variants.setdefault(variant.product_id, []).append(variant)
    skus = [variant.sku for product_id in ids for variant in variants.get(product_id, [])]
    prices: dict[str, list[PriceFact]] = {}
    for price in await _prices_in_effect(session, skus, at) if skus else []:
        prices.setdefault(price.sku, []).append(price)
    stock: dict[str, list[StockFact]] = {}
    for level in await _stock(session, skus) if skus else []:
        stock.setdefault(level.sku, []).append(level)
    items = []
    for product in products:
        own = variants.get(product.id, [])
        items.append(
            ProductFacts(
                product_id=product.id,
                status=product.status,
                version=product.version,
                details=await channel_details(session, product, own),
                prices=[price for variant in own for price in prices.get(variant.sku, [])],
                stock=[level for variant in own for level in stock.get(variant.sku, [])],
            )
        )
    return items, more
