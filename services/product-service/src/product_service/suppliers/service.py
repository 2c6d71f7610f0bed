"""Supplier rules: records, offers per SKU, and the supplier price/stock feed (CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.catalog import repository as catalog_repository
from product_service.common import as_utc, new_id, utc_now
from product_service.pricing.service import to_amount, to_minor
from product_service.suppliers.models import Supplier, SupplierOffer
from product_service.suppliers.schemas import FeedResult, FeedRowError, OfferRead, OfferSet, SupplierCreate
from servicekit.errors import Conflict, NotFound, UnprocessableEntity
from servicekit.http.pagination import Page, PageParams, after_key, cursor_key, make_page

MAX_FEED_ROWS = 100_000


async def create_supplier(session: AsyncSession, *, body: SupplierCreate) -> Supplier:
    taken = await session.execute(select(Supplier).where(col(Supplier.code) == body.code))
    if taken.scalars().first() is not None:
        raise Conflict(f"A supplier with code {body.code!r} exists.")
    supplier = Supplier(
        id=new_id(),
        code=body.code,
        title=body.title,
        default_lead_time_days=body.default_lead_time_days,
        created_at=utc_now(),
    )
    session.add(supplier)
    await session.flush()
    return supplier


async def get_supplier(session: AsyncSession, *, supplier_id: str) -> Supplier:
    supplier = await session.get(Supplier, supplier_id)
    if supplier is None:
        raise NotFound(f"No supplier {supplier_id}.")
    return supplier


async def list_suppliers(session: AsyncSession, *, after_code: str | None, limit: int) -> Sequence[Supplier]:
    query = select(Supplier).order_by(col(Supplier.code)).limit(limit)
    if after_code is not None:
        query = query.where(col(Supplier.code) > after_code)
    return (await session.execute(query)).scalars().all()


def to_read(offer: SupplierOffer, supplier: Supplier) -> OfferRead:
    return OfferRead(
        supplier_id=offer.supplier_id,
        sku=offer.sku,
        supplier_sku=offer.supplier_sku,
        cost=to_amount(offer.cost_minor) if offer.cost_minor is not None else None,
        currency=offer.currency,
        lead_time_days=offer.lead_time_days
        if offer.lead_time_days is not None
        else supplier.default_lead_time_days,
        min_order_quantity=offer.min_order_quantity,
        available_quantity=offer.available_quantity,
        updated_at=as_utc(offer.updated_at),
    )


async def set_offer(session: AsyncSession, *, supplier: Supplier, sku: str, body: OfferSet) -> SupplierOffer:
    """Create or replace the supplier's offer for a SKU; 404 unknown SKU, 409 supplier SKU used elsewhere."""
    if await catalog_repository.variant(session, sku) is None:
        raise NotFound(f"No variant with SKU {sku}.")
    if (body.cost is None) != (body.currency is None):
        raise UnprocessableEntity("cost and currency go together.")
    clash = await session.execute(
        select(SupplierOffer).where(
            col(SupplierOffer.supplier_id) == supplier.id,
            col(SupplierOffer.supplier_sku) == body.supplier_sku,
            col(SupplierOffer.sku) != sku,
        )
    )
    if clash.scalars().first() is not None:
        raise Conflict(f"Supplier SKU {body.supplier_sku!r} already maps to another SKU.")
    offer = await session.get(SupplierOffer, (supplier.id, sku))
    if offer is None:
        offer = SupplierOffer(
            supplier_id=supplier.id, sku=sku, supplier_sku=body.supplier_sku, updated_at=utc_now()
        )
        session.add(offer)
    offer.supplier_sku = body.supplier_sku
    offer.cost_minor = to_minor(body.cost) if body.cost is not None else None
    offer.currency = body.currency
    offer.lead_time_days = body.lead_time_days
    offer.min_order_quantity = body.min_order_quantity
    offer.available_quantity = body.available_quantity
    offer.updated_at = utc_now()
    await session.flush()
    return offer


async def offers(
    session: AsyncSession, *, supplier_id: str | None, sku: str | None, page: PageParams
) -> Page[OfferRead]:
    """One page of offers, by (supplier, SKU), of one supplier or for one SKU, with their supplier."""
    key = cursor_key(page.cursor, ("supplier_id", str), ("sku", str))
    order = [col(SupplierOffer.supplier_id), col(SupplierOffer.sku)]
    query = select(SupplierOffer, Supplier).join(Supplier, col(Supplier.id) == col(SupplierOffer.supplier_id))
    if supplier_id is not None:
        query = query.where(col(SupplierOffer.supplier_id) == supplier_id)
    if sku is not None:
        query = query.where(col(SupplierOffer.sku) == sku)
    if key is not None:
        query = query.where(after_key(order, key))
    rows = (await session.execute(query.order_by(*order).limit(page.limit + 1))).all()
    result = make_page(
        list(rows), page.limit, lambda row: {"supplier_id": row[0].supplier_id, "sku": row[0].sku}
    )
    items = [to_read(offer, supplier) for offer, supplier in result.items]
    return Page[OfferRead](items=items, next_cursor=result.next_cursor)


async def import_feed(session: AsyncSession, *, supplier: Supplier, content: str) -> FeedResult:
    """Apply a supplier's CSV feed: columns supplier_sku (required), cost, currency, available_quantity,
    lead_time_days, min_order_quantity. A row updates the offer with that supplier SKU; unknown supplier
    SKUs and bad values are reported per row and change nothing."""
    reader = csv.DictReader(io.StringIO(content))
    if reader.fieldnames is None or "supplier_sku" not in reader.fieldnames:
        raise UnprocessableEntity("The feed needs a header row with a supplier_sku column.")
    query = select(SupplierOffer).where(col(SupplierOffer.supplier_id) == supplier.id)
    existing = {offer.supplier_sku: offer for offer in (await session.execute(query)).scalars()}
    errors: list[FeedRowError] = []
    updated = 0
    rows = 0
    for number, record in enumerate(reader, start=1):
        rows += 1
        if rows > MAX_FEED_ROWS:
            raise UnprocessableEntity(f"A feed has at most {MAX_FEED_ROWS} rows.")
        offer = existing.get((record.get("supplier_sku") or "").strip())
        if offer is None:
            errors.append(FeedRowError(row_number=number, message="unknown supplier_sku"))
            continue
        try:
            changes = _feed_changes(record, offer)
        except (ValueError, InvalidOperation, ValidationError) as exc:
            errors.append(FeedRowError(row_number=number, message=str(exc)[:500]))
            continue
        for key, value in changes.items():
            setattr(offer, key, value)
        offer.updated_at = utc_now()
        updated += 1
    await session.flush()
    return FeedResult(rows=rows, updated=updated, errors=errors)


def _feed_changes(record: dict[str, str | None], offer: SupplierOffer) -> dict[str, object]:
    def cell(name: str) -> str | None:
        value = (record.get(name) or "").strip()
        return value or None

    changes: dict[str, object] = {}
    cost, currency = cell("cost"), cell("currency")
    if cost is not None:
        amount = Decimal(cost)
        if amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise ValueError("cost must be a non-negative amount with at most two decimals")
        code = currency or offer.currency
        if code is None or len(code) != 3 or not code.isalpha() or not code.isupper():
            raise ValueError("cost needs a three-letter currency")
        changes["cost_minor"], changes["currency"] = to_minor(amount), code
    for name, low in (("available_quantity", 0), ("lead_time_days", 0), ("min_order_quantity", 1)):
        value = cell(name)
        if value is not None:
            number = int(value)
            if number < low:
                raise ValueError(f"{name} must be at least {low}")
            changes[name] = number
    return changes
