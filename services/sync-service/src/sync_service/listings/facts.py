"""Handlers of product-service's events: they keep the facts listings are computed from, and name the
SKUs whose listings must be recomputed. Batch handlers (`handle_many`) fold a fetched run of events
into one recomputation, so a burst of changes to one SKU is computed once (latest state wins).

`apply_products`, `apply_prices` and `apply_stock` are the one way facts enter the projection: the event
handlers and the full resync's pull from product-service's API (`listings.source`) both use them; each
takes a batch (the rows it touches read in a few queries) and keeps the newer fact (product version,
price effective time, stock time)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, parse_data
from contracts.catalog.inventory import StockChanged
from contracts.catalog.prices import PriceChanged, PromotionEnded, PromotionStarted
from contracts.catalog.products import ProductArchived, ProductCreated, ProductDetails, ProductUpdated
from servicekit.events import handle_many
from sync_service.common import as_utc
from sync_service.listings import service
from sync_service.listings.compute import ALL_CHANNELS
from sync_service.listings.models import (
    CatalogPrice,
    CatalogProduct,
    CatalogPromotion,
    CatalogStock,
    CatalogVariant,
)


def _latest_time(events: Sequence[CloudEvent]) -> datetime:
    return max(as_utc(event.time) for event in events)


def _minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


CHUNK = 500
"""Keys per IN (...) when rows are read for a batch of facts."""


async def _rows_by(session: AsyncSession, model: Any, column: Any, keys: Collection[str]) -> list[Any]:
    """The rows of `model` whose `column` is one of `keys`, read a chunk of keys per query."""
    ordered = sorted(keys)
    rows: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        found = await session.execute(select(model).where(column.in_(ordered[start : start + CHUNK])))
        rows.extend(found.scalars().all())
    return rows


async def known(session: AsyncSession, column: Any, keys: Collection[str]) -> set[str]:
    """Those of `keys` that `column` of the projection holds (a SKU of `CatalogVariant`, a location of
    `CatalogStock`...), read a chunk of keys per query: what partners' files and notices are checked
    against."""
    ordered = sorted(keys)
    found: set[str] = set()
    for start in range(0, len(ordered), CHUNK):
        query = select(column).where(column.in_(ordered[start : start + CHUNK])).distinct()
        found.update((await session.execute(query)).scalars())
    return found


async def bump_facts(session: AsyncSession, skus: Collection[str], product_ids: Collection[str] = ()) -> None:
    """A new facts version for each of `skus` and each variant of `product_ids`
    (`CatalogVariant.facts_version`), in the transaction that changed their facts: a listing stamped with
    an older version is recomputed by the next resync."""
    connection = await session.connection()
    for statement, keys in ((_BUMP_BY_SKU, sorted(skus)), (_BUMP_BY_PRODUCT, sorted(product_ids))):
        for start in range(0, len(keys), CHUNK):
            await connection.execute(statement, {"keys": keys[start : start + CHUNK]})


def _bump_by(column: Any) -> Any:
    table = column.table
    return (
        update(table)
        .where(column.in_(bindparam("keys", expanding=True)))
        .values(facts_version=table.c.facts_version + 1)
    )


_VARIANTS: Any = CatalogVariant.__table__  # type: ignore[attr-defined]
# Built once: every consumer batch that changes facts runs one.
_BUMP_BY_SKU = _bump_by(_VARIANTS.c.sku)
_BUMP_BY_PRODUCT = _bump_by(_VARIANTS.c.product_id)


@dataclass(frozen=True)
class ProductFact:
    """A product as an event (or product-service's API) describes it at a version."""

    product_id: str
    status: str
    version: int
    details: ProductDetails | None


@dataclass(frozen=True)
class PriceFact:
    """The price in effect of a SKU in a currency, for a channel (None: every channel), from a moment."""

    sku: str
    currency: str
    channel: str | None
    amount: Decimal
    effective_from: datetime


@dataclass(frozen=True)
class StockFact:
    """A SKU's available units at a location as of a moment (product-service's row at that time)."""

    sku: str
    location_id: str
    location_code: str | None
    available: int
    as_of: datetime


async def apply_products(session: AsyncSession, products: Sequence[ProductFact]) -> set[str]:
    """Each product's facts (in order) unless the projection holds a newer version; the SKUs to
    recompute. The rows they touch are read in a few queries, not one per product or variant."""
    ids = {fact.product_id for fact in products}
    known = {
        row.product_id: row
        for row in await _rows_by(session, CatalogProduct, col(CatalogProduct.product_id), ids)
    }
    variant_skus = {v.sku for fact in products if fact.details is not None for v in fact.details.variants}
    variants = {
        row.sku: row for row in await _rows_by(session, CatalogVariant, col(CatalogVariant.sku), variant_skus)
    }
    skus: set[str] = set()
    applied: set[str] = set()
    for fact in products:
        taken = await _apply_product(session, fact, known, variants)
        if taken is not None:
            applied.add(fact.product_id)
            skus.update(taken)
    await session.flush()
    # Every variant of a product that changed (each SKU above points at it now), also one its latest
    # details no longer list: it still points at the product, whose facts its listing is computed from.
    await bump_facts(session, (), applied)
    return skus


async def _apply_product(
    session: AsyncSession,
    fact: ProductFact,
    known: dict[str, CatalogProduct],
    variants: dict[str, CatalogVariant],
) -> list[str] | None:
    """The SKUs of `fact`'s product to recompute; None when the fact is not taken (the projection holds a
    newer version, or it is a status change of a product it does not know)."""
    row = known.get(fact.product_id)
    if row is not None and row.version > fact.version:
        return None
    details = fact.details
    if details is None:
        if row is None:
            return None
        row.status = fact.status
        row.version = fact.version
        await session.flush()
        owned = await session.execute(
            select(col(CatalogVariant.sku)).where(col(CatalogVariant.product_id) == fact.product_id)
        )
        return list(owned.scalars().all())
    if row is None:
        row = known[fact.product_id] = CatalogProduct(
            product_id=fact.product_id,
            status=fact.status,
            title=details.title,
            attributes={},
            media_urls=[],
            channels=[],
            category_path=[],
            completeness={},
            version=fact.version,
        )
        session.add(row)
    row.status = fact.status
    row.version = fact.version
    row.title = details.title[:500]
    row.brand = details.brand[:500] if details.brand else None
    row.description = details.description
    row.attributes = details.attributes
    row.media_urls = details.media_urls
    row.channels = details.channels
    row.category_path = details.category_path
    row.completeness = details.completeness
    for variant in details.variants:
        existing = variants.get(variant.sku)
        if existing is None:
            variants[variant.sku] = CatalogVariant(
                sku=variant.sku, product_id=fact.product_id, gtin=variant.gtin, attributes=variant.attributes
            )
            session.add(variants[variant.sku])
        else:
            existing.product_id = fact.product_id
            existing.gtin = variant.gtin
            existing.attributes = variant.attributes
    return [variant.sku for variant in details.variants]


@handle_many
async def on_products(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """ecom.product.created/updated/archived.v1: the product's facts, then its SKUs' listings."""
    products: list[ProductFact] = []
    for event in events:
        data = parse_data(event)
        if isinstance(data, ProductCreated | ProductUpdated):
            products.append(ProductFact(data.product_id, data.status, data.version, data.details))
        elif isinstance(data, ProductArchived):
            products.append(ProductFact(data.product_id, "archived", data.version, data.details))
    skus = await apply_products(session, products)
    await service.recompute(session, skus=skus, at=_latest_time(events))


async def apply_prices(session: AsyncSession, prices: Iterable[PriceFact]) -> set[str]:
    """The prices in effect, each unless the projection holds one effective later; the SKUs whose price
    changed. Plain rows and prebuilt statements (one read, one INSERT and one UPDATE executemany), not ORM
    objects: this runs in every consumer batch of price events, where the ORM's loading and flush were
    most of its cost."""
    changes = list(prices)
    known: dict[tuple[str, str, str], tuple[int, datetime]] = {
        (row.sku, row.currency, row.channel): (row.amount_minor, as_utc(row.effective_from))
        for row in await service.plain_rows(
            session, CatalogPrice, col(CatalogPrice.sku), sorted({price.sku for price in changes})
        )
    }
    inserted: dict[tuple[str, str, str], tuple[int, datetime]] = {}
    updated: dict[tuple[str, str, str], tuple[int, datetime]] = {}
    changed: set[str] = set()
    for price in changes:
        key = (price.sku, price.currency, price.channel or ALL_CHANNELS)
        value = (_minor(price.amount), as_utc(price.effective_from))
        row = known.get(key)
        if row is not None and (row[1] > value[1] or row == value):
            continue  # the projection holds a later price, or this very one
        changed.add(price.sku)
        (inserted if row is None or key in inserted else updated)[key] = value
        known[key] = value
    connection = await session.connection()
    if inserted:
        await connection.execute(
            _INSERT_PRICE,
            [
                {
                    "sku": sku,
                    "currency": currency,
                    "channel": channel,
                    "amount_minor": amount,
                    "effective_from": at,
                }
                for (sku, currency, channel), (amount, at) in inserted.items()
            ],
        )
    if updated:
        await connection.execute(
            _UPDATE_PRICE,
            [
                {"b_sku": sku, "b_currency": currency, "b_channel": channel, "v_amount": amount, "v_at": at}
                for (sku, currency, channel), (amount, at) in updated.items()
            ],
        )
    await bump_facts(session, changed)
    return changed


_PRICES: Any = CatalogPrice.__table__  # type: ignore[attr-defined]
_INSERT_PRICE = insert(_PRICES)
_UPDATE_PRICE = (
    update(_PRICES)
    .where(
        _PRICES.c.sku == bindparam("b_sku"),
        _PRICES.c.currency == bindparam("b_currency"),
        _PRICES.c.channel == bindparam("b_channel"),
    )
    .values(
        amount_minor=bindparam("v_amount"),
        effective_from=bindparam("v_at", type_=_PRICES.c.effective_from.type),
    )
)
"""A price row's new amount and effective time (executemany); both statements built once."""


@handle_many
async def on_price_changes(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """ecom.price.changed.v1: the price in effect per SKU, currency and channel (latest wins)."""
    changes = [data for data in map(parse_data, events) if isinstance(data, PriceChanged)]
    await apply_prices(
        session,
        (
            PriceFact(data.sku, data.currency, data.channel, data.amount, data.effective_from)
            for data in changes
        ),
    )
    skus = {data.sku for data in changes}
    await service.recompute(session, skus=skus, at=_latest_time(events))


@handle_many
async def on_promotions(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """ecom.promotion.started/ended.v1: running promotions; every SKU they reach is recomputed."""
    skus: set[str] = set()
    categories: set[str] = set()
    for event in events:
        data = parse_data(event)
        assert isinstance(data, PromotionStarted | PromotionEnded)
        await session.execute(
            delete(CatalogPromotion).where(col(CatalogPromotion.promotion_id) == data.promotion_id)
        )
        if isinstance(data, PromotionStarted):
            session.add(
                CatalogPromotion(
                    promotion_id=data.promotion_id,
                    kind=data.kind,
                    percent_bp=_minor(data.percent) if data.percent is not None else None,
                    amount_minor=_minor(data.amount) if data.amount is not None else None,
                    currency=data.currency,
                    skus=data.skus,
                    category_ids=data.category_ids,
                    channels=data.channels,
                    starts_at=as_utc(data.starts_at),
                    ends_at=as_utc(data.ends_at),
                )
            )
        skus.update(data.skus)
        categories.update(data.category_ids)
    await session.flush()
    if categories:
        skus.update(await service.skus_in_categories(session, categories))
    await service.recompute(session, skus=skus, at=_latest_time(events))


async def apply_stock(session: AsyncSession, levels: Sequence[StockFact]) -> set[str]:
    """Each SKU's available units at a location (in order), unless the projection holds a later state of
    that row; the SKUs whose available units (or a location's code) changed."""
    known = {
        (row.sku, row.location_id): row
        for row in await _rows_by(
            session, CatalogStock, col(CatalogStock.sku), {level.sku for level in levels}
        )
    }
    changed: set[str] = set()
    for level in levels:
        as_of = as_utc(level.as_of)
        row = known.get((level.sku, level.location_id))
        if row is None:
            known[(level.sku, level.location_id)] = CatalogStock(
                sku=level.sku,
                location_id=level.location_id,
                location_code=level.location_code,
                available=level.available,
                as_of=as_of,
            )
            session.add(known[(level.sku, level.location_id)])
            changed.add(level.sku)
            continue
        if row.as_of is not None and as_utc(row.as_of) > as_of:
            continue
        location_code = level.location_code or row.location_code
        if row.available != level.available or row.location_code != location_code:
            changed.add(level.sku)  # a channel selling from some locations only counts by code
        row.available = level.available
        row.location_code = location_code
        row.as_of = as_of
    await session.flush()
    await bump_facts(session, changed)
    return changed


@handle_many
async def on_stock_changes(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """ecom.stock.changed.v1: available units per SKU and location."""
    levels: list[StockFact] = []
    skus: set[str] = set()
    for event in events:
        data = parse_data(event)
        assert isinstance(data, StockChanged)
        levels.extend(
            StockFact(data.sku, location.location_id, location.location_code, location.available, event.time)
            for location in data.locations
        )
        skus.add(data.sku)
    await apply_stock(session, levels)
    await service.recompute(session, skus=skus, at=_latest_time(events))


@handle_many
async def on_channels(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """ecom.channel.registered/updated/retired.v1 (sync-service's own): the channel's every listing."""
    channel_ids = {str(event.data["channel_id"]) for event in events}
    await service.recompute_channels(session, channel_ids=channel_ids, at=_latest_time(events))
