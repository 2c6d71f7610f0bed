"""Every query of the catalog."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from product_service.catalog.models import AttributeFamily, Category, Product, Variant


async def get_product(session: AsyncSession, product_id: str) -> Product | None:
    return await session.get(Product, product_id)


async def variants_of(session: AsyncSession, product_id: str) -> Sequence[Variant]:
    result = await session.execute(
        select(Variant).where(col(Variant.product_id) == product_id).order_by(col(Variant.sku))
    )
    return result.scalars().all()


async def existing_skus(session: AsyncSession, skus: Sequence[str]) -> set[str]:
    if not skus:
        return set()
    result = await session.execute(select(col(Variant.sku)).where(col(Variant.sku).in_(list(skus))))
    return set(result.scalars().all())


async def existing_gtins(session: AsyncSession, gtins: Sequence[str]) -> set[str]:
    if not gtins:
        return set()
    result = await session.execute(select(col(Variant.gtin)).where(col(Variant.gtin).in_(list(gtins))))
    return {gtin for gtin in result.scalars().all() if gtin}


async def variant(session: AsyncSession, sku: str) -> Variant | None:
    return await session.get(Variant, sku)


async def update_product_if_version(
    session: AsyncSession,
    product_id: str,
    *,
    expected_version: int | None,
    values: dict[str, Any],
    now: datetime,
) -> bool:
    """Write `values` and bump the version, only if the row still has `expected_version` (None: whatever
    it is now, for a change made without If-Match); the UPDATE locks the row until the transaction ends.
    False if stale (or the product is gone)."""
    statement = update(Product).where(col(Product.id) == product_id)
    if expected_version is None:
        statement = statement.values(**values, version=col(Product.version) + 1, updated_at=now)
    else:
        statement = statement.where(col(Product.version) == expected_version).values(
            **values, version=expected_version + 1, updated_at=now
        )
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def list_products(
    session: AsyncSession,
    *,
    limit: int,
    after_id: str | None,
    status: str | None,
    category_ids: Sequence[str] | None,
) -> Sequence[Product]:
    query = select(Product).order_by(col(Product.id)).limit(limit + 1)
    if after_id is not None:
        query = query.where(col(Product.id) > after_id)
    if status is not None:
        query = query.where(col(Product.status) == status)
    if category_ids is not None:
        query = query.where(col(Product.category_id).in_(list(category_ids)))
    return (await session.execute(query)).scalars().all()


async def get_category(session: AsyncSession, category_id: str) -> Category | None:
    return await session.get(Category, category_id)


async def all_categories(session: AsyncSession) -> Sequence[Category]:
    result = await session.execute(select(Category).order_by(col(Category.title), col(Category.id)))
    return result.scalars().all()


async def get_family(session: AsyncSession, family_id: str) -> AttributeFamily | None:
    return await session.get(AttributeFamily, family_id)


async def family_by_code(session: AsyncSession, code: str) -> AttributeFamily | None:
    result = await session.execute(select(AttributeFamily).where(col(AttributeFamily.code) == code))
    return result.scalars().first()


async def all_families(session: AsyncSession) -> Sequence[AttributeFamily]:
    result = await session.execute(select(AttributeFamily).order_by(col(AttributeFamily.code)))
    return result.scalars().all()


async def family_for_product_write(session: AsyncSession, family_id: str) -> AttributeFamily | None:
    """The family a product write validates against, share-locked until the transaction ends (PostgreSQL):
    a family edit (`family_for_update`) waits for the write to commit and then checks its values, and a
    write that comes during an edit waits for it and validates against the new definitions."""
    result = await session.execute(
        select(AttributeFamily)
        .where(col(AttributeFamily.id) == family_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    return result.scalars().first()


async def family_for_update(session: AsyncSession, family_id: str) -> AttributeFamily | None:
    """The family, locked until the transaction ends (PostgreSQL), so edits of it queue up."""
    result = await session.execute(
        select(AttributeFamily).where(col(AttributeFamily.id) == family_id).with_for_update()
    )
    return result.scalars().first()


async def update_family_if_version(
    session: AsyncSession, family_id: str, *, expected_version: int, values: dict[str, Any], now: datetime
) -> bool:
    """Write `values` only if the family still has `expected_version`; bumps the version. False if stale."""
    result = await session.execute(
        update(AttributeFamily)
        .where(col(AttributeFamily.id) == family_id, col(AttributeFamily.version) == expected_version)
        .values(**values, version=expected_version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def family_products(
    session: AsyncSession, family_id: str, *, after_id: str | None, limit: int
) -> Sequence[Row[Any]]:
    """A page of the family's products (id, status, attributes, channels), in id order."""
    query = (
        select(col(Product.id), col(Product.status), col(Product.attributes), col(Product.channels))
        .where(col(Product.family_id) == family_id)
        .order_by(col(Product.id))
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(col(Product.id) > after_id)
    return (await session.execute(query)).all()


async def products_by_ids(session: AsyncSession, product_ids: Sequence[str]) -> Sequence[Product]:
    """The products with these ids, in id order (missing ids are left out)."""
    if not product_ids:
        return []
    query = select(Product).where(col(Product.id).in_(list(product_ids))).order_by(col(Product.id))
    return (await session.execute(query)).scalars().all()


async def count_family_products(session: AsyncSession, family_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(Product).where(col(Product.family_id) == family_id)
    )
    return int(result.scalar_one())


def forget_family(family_id: str) -> None:
    """Drop a changed family from this process's cache (see `cached_family`)."""
    _FAMILY_CACHE.pop(family_id, None)


_PRODUCTS: Table = Product.__table__  # type: ignore[attr-defined]
_VARIANTS: Table = Variant.__table__  # type: ignore[attr-defined]
_FAMILIES: Table = AttributeFamily.__table__  # type: ignore[attr-defined]

# The hot read path runs Core statements built once, on a plain connection: building a statement and its
# cache key per call, and loading ORM instances, cost more than the query itself.
_PRODUCT_WITH_VARIANTS = (
    select(
        _PRODUCTS,
        _VARIANTS.c.sku.label("variant_sku"),
        _VARIANTS.c.gtin.label("variant_gtin"),
        _VARIANTS.c.attributes.label("variant_attributes"),
    )
    .outerjoin(_VARIANTS, _VARIANTS.c.product_id == _PRODUCTS.c.id)
    .where(_PRODUCTS.c.id == bindparam("product_id"))
    .order_by(_VARIANTS.c.sku)
)
_FAMILY_BY_ID = select(_FAMILIES).where(_FAMILIES.c.id == bindparam("family_id"))


async def product_with_variants(connection: AsyncConnection, product_id: str) -> Sequence[Row[Any]]:
    """A product's columns joined with each of its variants' `variant_sku`, `variant_gtin` and
    `variant_attributes` (None when it has none), ordered by SKU, in one round trip; empty when there
    is no such product."""
    return (await connection.execute(_PRODUCT_WITH_VARIANTS, {"product_id": product_id})).all()


# Families change rarely (PATCH /v1/families/{id}); reads keep them in memory for a few seconds. The process
# that changes a family forgets it at once (`forget_family`); other replicas see the change within
# FAMILY_CACHE_SECONDS.
_FAMILY_CACHE: dict[str, tuple[AttributeFamily, float]] = {}
FAMILY_CACHE_SIZE = 1000
FAMILY_CACHE_SECONDS = 5.0


def _cached(family_id: str) -> AttributeFamily | None:
    entry = _FAMILY_CACHE.get(family_id)
    if entry is None or entry[1] < time.monotonic():
        return None
    return entry[0]


def _remember_family(family: AttributeFamily) -> None:
    if len(_FAMILY_CACHE) >= FAMILY_CACHE_SIZE:
        _FAMILY_CACHE.clear()
    _FAMILY_CACHE[family.id] = (family, time.monotonic() + FAMILY_CACHE_SECONDS)


async def cached_family(session: AsyncSession, family_id: str) -> AttributeFamily | None:
    """A family for display (completeness on reads), from the short-lived cache; writes validate
    against the family row they read themselves."""
    family = _cached(family_id)
    if family is None:
        family = await session.get(AttributeFamily, family_id)
        if family is not None:
            _remember_family(family)
    return family


async def cached_family_read(connection: AsyncConnection, family_id: str) -> AttributeFamily | None:
    """`cached_family` for the read path's plain connection."""
    family = _cached(family_id)
    if family is None:
        row = (await connection.execute(_FAMILY_BY_ID, {"family_id": family_id})).first()
        if row is not None:
            family = AttributeFamily(**row._mapping)
            _remember_family(family)
    return family
