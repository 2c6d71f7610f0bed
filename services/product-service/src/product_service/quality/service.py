"""Data quality checks over the whole catalog: missing required attributes, invalid or duplicate GTINs,
near-identical names, prices below cost, and active products with no stock anywhere."""

from __future__ import annotations

import re
from collections import defaultdict
from difflib import SequenceMatcher

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.catalog import repository as catalog_repository
from product_service.catalog.attributes import completeness, definitions_of
from product_service.catalog.gtin import is_valid_gtin
from product_service.catalog.models import Product, Variant
from product_service.common import utc_now
from product_service.inventory.models import StockLevel
from product_service.pricing.models import PriceRecord
from product_service.pricing.service import to_amount
from product_service.quality.schemas import (
    DuplicateGtin,
    GtinIssue,
    MissingAttributes,
    PriceBelowCost,
    QualityReport,
    Section,
    SimilarNames,
)

SIMILARITY_THRESHOLD = 0.92
BLOCK_PREFIX = 4
MAX_BLOCK = 200
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalized_title(title: str) -> str:
    return _NON_WORD.sub(" ", title.lower()).strip()


def similar_groups(titles: list[tuple[str, str]]) -> list[SimilarNames]:
    """Pairs of products whose normalised titles are (nearly) the same. Titles are blocked by their
    first letters so the comparison stays far from quadratic on a large catalog."""
    blocks: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for product_id, title in titles:
        norm = normalized_title(title)
        if norm:
            blocks[norm[:BLOCK_PREFIX]].append((product_id, title, norm))
    found: list[SimilarNames] = []
    for block in blocks.values():
        block = block[:MAX_BLOCK]
        for i, (id_a, title_a, norm_a) in enumerate(block):
            for id_b, title_b, norm_b in block[i + 1 :]:
                ratio = 1.0 if norm_a == norm_b else SequenceMatcher(None, norm_a, norm_b).ratio()
                if ratio >= SIMILARITY_THRESHOLD:
                    found.append(
                        SimilarNames(
                            product_ids=[id_a, id_b], titles=[title_a, title_b], similarity=round(ratio, 3)
                        )
                    )
    return found


async def report(session: AsyncSession, *, limit: int) -> QualityReport:
    families = {
        family.id: definitions_of(family.attributes)
        for family in await catalog_repository.all_families(session)
    }
    products = (
        (
            await session.execute(
                select(Product).where(col(Product.status) != "archived").order_by(col(Product.id))
            )
        )
        .scalars()
        .all()
    )

    missing: list[MissingAttributes] = []
    for product in products:
        gaps = {
            entry.channel: entry.missing
            for entry in completeness(product.attributes, families.get(product.family_id or "", []))
            if entry.missing
        }
        if gaps:
            missing.append(MissingAttributes(product_id=product.id, missing=gaps))

    variants = (
        await session.execute(select(col(Variant.sku), col(Variant.gtin), col(Variant.product_id)))
    ).all()
    invalid = [GtinIssue(sku=sku, gtin=gtin) for sku, gtin, _ in variants if gtin and not is_valid_gtin(gtin)]
    by_gtin: dict[str, list[str]] = defaultdict(list)
    for sku, gtin, _ in variants:
        if gtin:
            by_gtin[gtin.zfill(14)].append(sku)
    duplicates = [
        DuplicateGtin(gtin=gtin, skus=sorted(skus)) for gtin, skus in sorted(by_gtin.items()) if len(skus) > 1
    ]

    similar = similar_groups([(product.id, product.title) for product in products])

    latest: dict[tuple[str, str, str], PriceRecord] = {}
    prices = await session.execute(
        select(PriceRecord)
        .where(col(PriceRecord.effective_from) <= utc_now())
        .order_by(col(PriceRecord.effective_from), col(PriceRecord.id))
    )
    for record in prices.scalars():
        latest[(record.sku, record.currency, record.channel)] = record
    below = [
        PriceBelowCost(
            sku=r.sku,
            currency=r.currency,
            channel=r.channel or None,
            amount=to_amount(r.amount_minor),
            cost=to_amount(r.cost_minor),
        )
        for r in latest.values()
        if r.cost_minor is not None and r.amount_minor < r.cost_minor
    ]

    stocked = set(
        (
            await session.execute(
                select(col(Variant.product_id))
                .join(StockLevel, col(StockLevel.sku) == col(Variant.sku))
                .where(col(StockLevel.on_hand) > 0)
                .distinct()
            )
        ).scalars()
    )
    no_stock = [p.id for p in products if p.status == "active" and p.id not in stocked]

    return QualityReport(
        missing_required_attributes=Section(count=len(missing), items=missing[:limit]),
        invalid_gtins=Section(count=len(invalid), items=invalid[:limit]),
        duplicate_gtins=Section(count=len(duplicates), items=duplicates[:limit]),
        near_identical_names=Section(count=len(similar), items=similar[:limit]),
        price_below_cost=Section(count=len(below), items=sorted(below, key=lambda b: b.sku)[:limit]),
        active_without_stock=Section(count=len(no_stock), items=no_stock[:limit]),
    )
