"""Every query of the catalog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
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
    session: AsyncSession, product_id: str, *, expected_version: int, values: dict[str, Any], now: datetime
) -> bool:
    """Write `values` only if the row still has `expected_version`; bumps the version. False if stale."""
    result = await session.execute(
        update(Product)
        .where(col(Product.id) == product_id, col(Product.version) == expected_version)
        .values(**values, version=expected_version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
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


async def product_with_variants(
    session: AsyncSession, product_id: str
) -> tuple[Product, list[Variant]] | None:
    """A product and its variants in one round trip (the hot read path)."""
    rows = (
        await session.execute(
            select(Product, Variant)
            .outerjoin(Variant, col(Variant.product_id) == col(Product.id))
            .where(col(Product.id) == product_id)
            .order_by(col(Variant.sku))
        )
    ).all()
    if not rows:
        return None
    return rows[0][0], [variant for _, variant in rows if variant is not None]


_FAMILY_CACHE: dict[str, AttributeFamily] = {}
FAMILY_CACHE_SIZE = 1000


async def cached_family(session: AsyncSession, family_id: str) -> AttributeFamily | None:
    """Families never change once created, so reads may keep them in memory."""
    family = _FAMILY_CACHE.get(family_id)
    if family is None:
        family = await session.get(AttributeFamily, family_id)
        if family is not None:
            if len(_FAMILY_CACHE) >= FAMILY_CACHE_SIZE:
                _FAMILY_CACHE.clear()
            _FAMILY_CACHE[family_id] = family
    return family
