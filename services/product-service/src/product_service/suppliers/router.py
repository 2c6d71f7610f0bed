"""Supplier routes: records, offers per SKU, and the price/stock feed import."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from product_service.common import ReadCaller, WriteCaller
from product_service.suppliers import service
from product_service.suppliers.models import Supplier
from product_service.suppliers.schemas import FeedResult, OfferRead, OfferSet, SupplierCreate, SupplierRead
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.pagination import Page, PageDep, cursor_value, make_page
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi

router = APIRouter(prefix="/v1/suppliers", tags=["suppliers"])

MAX_FEED_BYTES = 20 * 1024 * 1024


@router.post(
    "",
    response_model=SupplierRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_supplier(body: SupplierCreate, session: SessionDep, _: WriteCaller) -> Supplier:
    """Add a supplier."""
    return await service.create_supplier(session, body=body)


@router.get("", response_model=Page[SupplierRead], responses=problem_responses(400, 401, 403))
async def list_suppliers(session: SessionDep, _: ReadCaller, page: PageDep) -> Page[SupplierRead]:
    """Suppliers by code; cursor pagination."""
    after = cursor_value(page.cursor, "code", str)
    rows = await service.list_suppliers(session, after_code=after, limit=page.limit + 1)
    result = make_page(list(rows), page.limit, lambda supplier: {"code": supplier.code})
    items = [SupplierRead.model_validate(row, from_attributes=True) for row in result.items]
    return Page[SupplierRead](items=items, next_cursor=result.next_cursor)


@router.get("/offers", response_model=Page[OfferRead], responses=problem_responses(400, 401, 403, 422))
async def offers_for_sku(
    sku: Annotated[str, Query(min_length=1)], session: SessionDep, _: ReadCaller, page: PageDep
) -> Page[OfferRead]:
    """Every supplier's offer for one SKU (cost, lead time, minimum order, supplier stock); cursor
    pagination."""
    return await service.offers(session, supplier_id=None, sku=sku, page=page)


@router.get("/{supplier_id}", response_model=SupplierRead, responses=problem_responses(401, 403, 404))
async def get_supplier(supplier_id: str, session: SessionDep, _: ReadCaller) -> Supplier:
    """Read one supplier."""
    return await service.get_supplier(session, supplier_id=supplier_id)


@router.put(
    "/{supplier_id}/offers/{sku}",
    response_model=OfferRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_offer(
    supplier_id: str, sku: str, body: OfferSet, session: SessionDep, _: WriteCaller
) -> OfferRead:
    """Set what a supplier offers for one of our SKUs."""
    supplier = await service.get_supplier(session, supplier_id=supplier_id)
    offer = await service.set_offer(session, supplier=supplier, sku=sku, body=body)
    return service.to_read(offer, supplier)


@router.get(
    "/{supplier_id}/offers", response_model=Page[OfferRead], responses=problem_responses(400, 401, 403, 404)
)
async def supplier_offers(
    supplier_id: str, session: SessionDep, _: ReadCaller, page: PageDep
) -> Page[OfferRead]:
    """The supplier's offers by SKU; cursor pagination."""
    await service.get_supplier(session, supplier_id=supplier_id)
    return await service.offers(session, supplier_id=supplier_id, sku=None, page=page)


@router.post(
    "/{supplier_id}/feed",
    response_model=FeedResult,
    responses=problem_responses(401, 403, 404, 413, 422),
    openapi_extra=upload_openapi("text/csv", description="CSV keyed by supplier_sku"),
)
async def import_feed(
    supplier_id: str,
    session: SessionDep,
    _: WriteCaller,
    upload: Annotated[Upload, Depends(upload_dependency(MAX_FEED_BYTES))],
) -> FeedResult:
    """Import the supplier's price/stock file (CSV keyed by supplier_sku, as a multipart `file` part or
    the raw body); bad rows are reported, a structurally broken file is refused whole."""
    supplier = await service.get_supplier(session, supplier_id=supplier_id)
    rows = await asyncio.to_thread(service.read_feed, upload.file)
    return await service.import_feed(session, supplier=supplier, rows=rows)
