"""Supplier rules: records, offers per SKU, and the supplier price/stock feed (CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from product_service.catalog import repository as catalog_repository
from product_service.common import as_utc, new_id, utc_now
from product_service.pricing.service import to_amount, to_minor
from product_service.suppliers.models import Supplier, SupplierOffer
from product_service.suppliers.schemas import FeedResult, FeedRowError, OfferRead, OfferSet, SupplierCreate
from servicekit.bounds import MAX_AMOUNT, amount_problem, is_currency
from servicekit.db import upsert
from servicekit.errors import Conflict, NotFound, UnprocessableEntity
from servicekit.files import CsvReader, CsvRow, FileFormatError, FileLimits
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
    fields = {
        "supplier_sku": body.supplier_sku,
        "cost_minor": to_minor(body.cost) if body.cost is not None else None,
        "currency": body.currency,
        "lead_time_days": body.lead_time_days,
        "min_order_quantity": body.min_order_quantity,
        "available_quantity": body.available_quantity,
        "updated_at": utc_now(),
    }
    # One upsert: of concurrent settings of a new offer the first creates it and the others replace it
    # (a read-then-insert made the later ones clash on the key: a 500).
    try:
        await upsert(
            session,
            SupplierOffer.__table__,  # type: ignore[attr-defined]
            values={"supplier_id": supplier.id, "sku": sku, **fields},
            key=["supplier_id", "sku"],
            set_=fields,
        )
    except IntegrityError:  # another SKU took this supplier SKU at the same moment
        raise Conflict(f"Supplier SKU {body.supplier_sku!r} already maps to another SKU.") from None
    offer = await session.get(SupplierOffer, (supplier.id, sku), populate_existing=True)
    assert offer is not None
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


FEED_LIMITS = FileLimits(max_rows=MAX_FEED_ROWS, max_columns=20, max_cell_chars=1000)
"""Bounds of a supplier feed (documented in docs/products.md)."""
FEED_INT_COLUMNS = (
    ("available_quantity", 0, 1_000_000_000),
    ("lead_time_days", 0, 3650),
    ("min_order_quantity", 1, 10_000_000),
)


def read_feed(source: IO[bytes]) -> list[CsvRow]:
    """The feed's rows, strictly read (blocking: call it in a thread). 422 naming the line when the file
    is structurally broken, or has no supplier_sku column."""
    try:
        reader = CsvReader(source, FEED_LIMITS)
        if "supplier_sku" not in reader.header:
            raise UnprocessableEntity("The feed needs a header row with a supplier_sku column.")
        return list(reader)
    except FileFormatError as exc:
        raise UnprocessableEntity(f"The feed cannot be read, nothing was applied: {exc}.") from None


async def import_feed(session: AsyncSession, *, supplier: Supplier, rows: list[CsvRow]) -> FeedResult:
    """Apply a supplier's CSV feed: columns supplier_sku (required), cost, currency, available_quantity,
    lead_time_days, min_order_quantity. A row updates the offer with that supplier SKU; unknown supplier
    SKUs and bad values are reported per row (naming the column and value) and change nothing."""
    query = select(SupplierOffer).where(col(SupplierOffer.supplier_id) == supplier.id)
    existing = {offer.supplier_sku: offer for offer in (await session.execute(query)).scalars()}
    errors: list[FeedRowError] = []
    updated = 0
    for row in rows:
        supplier_sku = row.cells["supplier_sku"].strip()
        offer = existing.get(supplier_sku)
        if offer is None:
            errors.append(
                FeedRowError(row_number=row.number, message=f"unknown supplier_sku {supplier_sku[:100]!r}")
            )
            continue
        try:
            changes = _feed_changes(row.cells, offer)
        except FeedValueError as exc:
            errors.append(FeedRowError(row_number=row.number, message=str(exc)))
            continue
        for key, value in changes.items():
            setattr(offer, key, value)
        offer.updated_at = utc_now()
        updated += 1
    await session.flush()
    return FeedResult(rows=len(rows), updated=updated, errors=errors)


class FeedValueError(ValueError):
    """A cell of a feed row that cannot be used; the message names the column and the value."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(f"{column} {value[:100]!r}: {reason}")


def _feed_changes(cells: dict[str, str], offer: SupplierOffer) -> dict[str, object]:
    def cell(name: str) -> str | None:
        value = (cells.get(name) or "").strip()
        return value or None

    changes: dict[str, object] = {}
    cost, currency = cell("cost"), cell("currency")
    if currency is not None and not is_currency(currency):
        raise FeedValueError(
            "currency", currency, "not an ISO 4217 code of a currency amounts can be in (e.g. EUR)"
        )
    if cost is not None:
        try:
            amount = Decimal(cost)
        except InvalidOperation:
            raise FeedValueError("cost", cost, "not a number (write e.g. 12.50)") from None
        if (
            not amount.is_finite()
            or amount < 0
            or amount > MAX_AMOUNT
            or amount != amount.quantize(Decimal("0.01"))
        ):
            raise FeedValueError(
                "cost", cost, f"must be an amount from 0 to {MAX_AMOUNT} with at most two decimals"
            )
        code = currency or offer.currency
        if code is None:
            raise FeedValueError("cost", cost, "needs a currency column (the offer has none yet)")
        problem = amount_problem(amount, code)
        if problem is not None:
            raise FeedValueError("cost", cost, problem)
        changes["cost_minor"], changes["currency"] = to_minor(amount), code
    elif currency is not None and currency != offer.currency and offer.cost_minor is not None:
        raise FeedValueError("currency", currency, "changing the currency needs a cost in the same row")
    for name, low, high in FEED_INT_COLUMNS:
        value = cell(name)
        if value is not None:
            if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 12:
                raise FeedValueError(name, value, "not a whole number")
            number = int(value)
            if not low <= number <= high:
                raise FeedValueError(name, value, f"must be from {low} to {high}")
            changes[name] = number
    return changes
