"""Full-text search over products: SQLite FTS5 or PostgreSQL tsvector, behind one interface.

The index holds one document per product (title, brand, description, attribute values, SKUs) and is
written in the same transaction as the product."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import TextClause
from sqlmodel import col

from product_service.catalog.models import Product, Variant
from product_service.common import utc_now
from product_service.inventory.models import StockLevel
from product_service.pricing.models import ALL_CHANNELS, PriceRecord

_TOKEN = re.compile(r"\w+", re.UNICODE)
MAX_TOKENS = 20
# PostgreSQL refuses a lexeme of 2 KiB or more ("word is too long"); at 4 bytes a character, 500 stays
# under it. Nobody searches for a longer word, so such a word is left out of the index.
MAX_LEXEME_CHARS = 500


def document_of(
    *, title: str, brand: str | None, description: str | None, attributes: dict[str, Any], skus: list[str]
) -> str:
    """The text a product is found by."""
    parts = [title, brand or "", description or ""]
    for value in attributes.values():
        if isinstance(value, dict):
            parts.append(" ".join(str(v) for v in value.values()))
        elif value is not None:
            parts.append(str(value))
    parts.extend(skus)
    return " ".join(part for part in parts if part)


def tokens_of(query: str) -> list[str]:
    return _TOKEN.findall(query.lower())[:MAX_TOKENS]


def _lexemes_of(document: str) -> list[str]:
    """A document's words for PostgreSQL, cut by `_TOKEN` like the query's and not by the text-search
    parser: the parser reads "0e4a030bd3" as the number "0e4" followed by "a030bd3" in a query but as one
    word in "DUP-0e4a030bd3", so the two sides would disagree."""
    return sorted({word for word in _TOKEN.findall(document.lower()) if len(word) <= MAX_LEXEME_CHARS})


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def index_product(session: AsyncSession, *, product_id: str, document: str) -> None:
    """Put (or replace) a product's document in the search index."""
    await index_products(session, [(product_id, document)], replace=True)


def matching_ids(session: AsyncSession, query: str) -> tuple[TextClause, dict[str, str]] | None:
    """A SELECT of the product ids matching every word of `query` (prefix match on each), with its
    parameters; None when the query has no words."""
    tokens = tokens_of(query)
    if not tokens:
        return None
    if _is_postgres(session):
        tsquery = " & ".join(f"'{token}':*" for token in tokens)
        return (
            text("SELECT product_id FROM product_search WHERE document @@ CAST(:q AS tsquery)"),
            {"q": tsquery},
        )
    match = " ".join(f'"{token}"*' for token in tokens)
    return text("SELECT product_id FROM product_search WHERE product_search MATCH :q"), {"q": match}


@dataclass(frozen=True)
class SearchFilters:
    query: str | None = None
    category_ids: list[str] | None = None
    status: str | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)
    currency: str | None = None
    min_price_minor: int | None = None
    max_price_minor: int | None = None
    stock: str | None = None  # in_stock or out_of_stock


MAX_ATTRIBUTE_NUMBER = 1e15


def _attribute_condition(session: AsyncSession, code: str, value: str) -> Any:
    """The attribute equals `value` read as text, or as the number or boolean it spells."""
    candidates: list[Any] = [value]
    if value in ("true", "false"):
        candidates.append(value == "true")
    else:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            # Only a number an attribute can hold (finite, within ±1e15, see servicekit.bounds.FiniteFloat);
            # anything else is matched as text, never handed to the database as inf or a 100-digit int.
            if math.isfinite(number) and abs(number) <= MAX_ATTRIBUTE_NUMBER:
                candidates.append(int(number) if number.is_integer() else number)
    if _is_postgres(session):
        element = cast(col(Product.attributes)[code], JSONB)
        return or_(*(element == cast(literal(json.dumps(c)), JSONB) for c in candidates))
    extracted = func.json_extract(col(Product.attributes), f'$."{code}"')
    kinds = func.json_type(col(Product.attributes), f'$."{code}"')
    conditions = [and_(kinds == "text", extracted == value)]
    for candidate in candidates[1:]:
        if isinstance(candidate, bool):
            conditions.append(and_(kinds == ("true" if candidate else "false")))
        else:
            conditions.append(and_(kinds.in_(["integer", "real"]), extracted == candidate))
    return or_(*conditions)


async def search_products(
    session: AsyncSession, *, filters: SearchFilters, after_id: str | None, limit: int
) -> Sequence[Product]:
    """Products matching every filter, in id order, up to limit + 1 (the extra one says there is more)."""
    statement = select(Product).order_by(col(Product.id)).limit(limit + 1)
    if after_id is not None:
        statement = statement.where(col(Product.id) > after_id)
    if filters.query is not None:
        matching = matching_ids(session, filters.query)
        if matching is None:
            return []
        clause, params = matching
        statement = statement.where(
            col(Product.id).in_(clause.bindparams(**params).columns(product_id=String))
        )
    if filters.category_ids is not None:
        statement = statement.where(col(Product.category_id).in_(filters.category_ids))
    if filters.status is not None:
        statement = statement.where(col(Product.status) == filters.status)
    for code, value in filters.attributes:
        statement = statement.where(_attribute_condition(session, code, value))
    if filters.currency is not None and (
        filters.min_price_minor is not None or filters.max_price_minor is not None
    ):
        variant = aliased(Variant)
        current = (
            select(col(PriceRecord.amount_minor))
            .where(
                col(PriceRecord.sku) == variant.sku,
                col(PriceRecord.currency) == filters.currency,
                col(PriceRecord.channel) == ALL_CHANNELS,
                col(PriceRecord.effective_from) <= utc_now(),
            )
            .order_by(col(PriceRecord.effective_from).desc(), col(PriceRecord.id).desc())
            .limit(1)
            .scalar_subquery()
        )
        conditions: list[Any] = [variant.product_id == Product.id]
        if filters.min_price_minor is not None:
            conditions.append(current >= filters.min_price_minor)
        if filters.max_price_minor is not None:
            conditions.append(current <= filters.max_price_minor)
        statement = statement.where(exists(select(col(variant.sku)).where(*conditions)))
    if filters.stock is not None:
        in_stock = exists(
            select(col(StockLevel.sku))
            .join(Variant, col(Variant.sku) == col(StockLevel.sku))
            .where(
                col(Variant.product_id) == col(Product.id),
                col(StockLevel.on_hand) - col(StockLevel.reserved) > 0,
            )
        )
        statement = statement.where(in_stock if filters.stock == "in_stock" else ~in_stock)
    return (await session.execute(statement)).scalars().all()


async def index_products(
    session: AsyncSession, documents: list[tuple[str, str]], *, replace: bool = False
) -> None:
    """Index products in one statement (one product, or a bulk import batch); `replace` for products that
    may be indexed already."""
    if not documents:
        return
    if _is_postgres(session):
        # Two array parameters; a product's lexemes travel space-separated (`_TOKEN` words never hold a
        # space), so the server does no tokenizing of its own.
        await session.execute(
            text(
                "INSERT INTO product_search (product_id, document) "
                "SELECT id, array_to_tsvector(string_to_array(lexemes, ' ')) "
                "FROM unnest(CAST(:ids AS varchar[]), CAST(:lexemes AS text[])) AS t(id, lexemes)"
                + (" ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document" if replace else "")
            ),
            {
                "ids": [product_id for product_id, _ in documents],
                "lexemes": [" ".join(_lexemes_of(document)) for _, document in documents],
            },
        )
        return
    if replace:
        # product_id is not indexed in FTS5: one DELETE scans the table once for the whole batch.
        await session.execute(
            text("DELETE FROM product_search WHERE product_id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": [product_id for product_id, _ in documents]},
        )
    await session.execute(
        text("INSERT INTO product_search (product_id, document) VALUES (:id, :doc)"),
        [{"id": product_id, "doc": document} for product_id, document in documents],
    )
