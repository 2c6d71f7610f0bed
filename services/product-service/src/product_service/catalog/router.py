"""Catalog routes: attribute families, the category tree, products and variants."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from product_service.catalog import search, service
from product_service.catalog.models import AttributeFamily, Category
from product_service.catalog.schemas import (
    CHANNEL_PATTERN,
    CODE_PATTERN,
    CategoryCreate,
    CategoryNode,
    CategoryRead,
    CompletenessReport,
    FamilyCreate,
    FamilyRead,
    FamilyUpdate,
    FamilyUpdateResult,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductStatus,
    ProductSummary,
    ProductUpdate,
    StockState,
    VariantCreate,
)
from product_service.catalog.search import SearchFilters
from product_service.channels.service import require_known
from product_service.common import ReadCaller, SettingsDep, WriteCaller, cursor_id
from servicekit.bounds import MAX_AMOUNT, CurrencyCode
from servicekit.dependencies import SessionDep
from servicekit.errors import UnprocessableEntity, problem_responses
from servicekit.http.concurrency import IfMatchDep, etag_for, set_etag
from servicekit.http.pagination import cursor_value, encode_cursor, page_params_of
from servicekit.http.responses import model_response

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.post(
    "/families",
    response_model=FamilyRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_family(body: FamilyCreate, session: SessionDep, _: WriteCaller) -> AttributeFamily:
    """Define an attribute family: typed attributes, each required or optional per channel."""
    await require_known(session, (c for a in body.attributes for c in a.required_channels))
    return await service.create_family(session, body=body)


@router.get("/families/{family_id}", response_model=FamilyRead, responses=problem_responses(401, 403, 404))
async def get_family(
    family_id: str, session: SessionDep, response: Response, _: ReadCaller
) -> AttributeFamily:
    """Read one attribute family; the ETag is its version."""
    family = await service.get_family(session, family_id=family_id)
    set_etag(response, family.version)
    return family


@router.patch(
    "/families/{family_id}",
    response_model=FamilyUpdateResult,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_family(
    family_id: str,
    body: FamilyUpdate,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
    _: WriteCaller,
) -> FamilyUpdateResult:
    """Change a family (title; attributes: the whole new list); 409 if products' values would not fit."""
    await require_known(session, (c for a in body.attributes or () for c in a.required_channels))
    family, impact = await service.update_family(
        session, family_id=family_id, changes=body, if_match=if_match, settings=settings
    )
    set_etag(response, family.version)
    return FamilyUpdateResult(
        **FamilyRead.model_validate(family, from_attributes=True).model_dump(), impact=impact
    )


@router.post(
    "/categories",
    response_model=CategoryRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_category(body: CategoryCreate, session: SessionDep, _: WriteCaller) -> Category:
    """Add a category to the tree, optionally with the attribute family of its products."""
    return await service.create_category(session, body=body)


@router.get("/categories", response_model=list[CategoryNode], responses=problem_responses(401, 403))
async def category_tree(session: SessionDep, _: ReadCaller) -> list[CategoryNode]:
    """The whole category tree."""
    return await service.category_tree(session)


@router.get(
    "/categories/{category_id}", response_model=CategoryRead, responses=problem_responses(401, 403, 404)
)
async def get_category(category_id: str, session: SessionDep, _: ReadCaller) -> Category:
    """Read one category."""
    return await service.get_category(session, category_id=category_id)


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_product(
    body: ProductCreate, session: SessionDep, settings: SettingsDep, response: Response, _: WriteCaller
) -> ProductRead:
    """Create a product with its variants; attribute values are checked against the family."""
    await require_known(session, body.channels)
    product = await service.create_product(session, body=body, settings=settings)
    set_etag(response, product.version)
    response.headers["Location"] = f"/v1/products/{product.id}"
    return await service.product_read(session, product=product, settings=settings)


@router.get("/products", response_model=ProductPage, responses=problem_responses(400, 401, 403))
async def list_products(
    session: SessionDep,
    _: ReadCaller,
    status: ProductStatus | None = None,
    category_id: Annotated[str | None, Query(description="This category and its descendants")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ProductPage:
    """Products in creation order, filtered by status and category, with cursor pagination."""
    params = page_params_of(limit, cursor)
    after = cursor_value(params.cursor, "id", str)
    rows = await service.list_products(
        session,
        limit=limit,
        after_id=after,
        status=status,
        category_id=category_id,
    )
    items = [ProductSummary.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(rows) > limit and items else None
    return ProductPage(items=items, next_cursor=next_cursor)


@router.get("/products/{product_id}", response_model=ProductRead, responses=problem_responses(401, 403, 404))
async def get_product(product_id: str, request: Request, _: ReadCaller) -> Response:
    """Read a product with its variants and completeness per channel; the ETag is its version."""
    # The hottest route keeps its per-request work small: database and settings come from the app's
    # runtime rather than through two more dependencies, and the answer, validated once as ProductRead,
    # is serialized here instead of validated again (see bench/scenarios/product_read.py).
    runtime = request.app.state.runtime
    product = await service.read_product(runtime.database, product_id=product_id, settings=runtime.settings)
    return model_response(product, headers={"ETag": etag_for(product.version)})


@router.patch(
    "/products/{product_id}",
    response_model=ProductRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_product(
    product_id: str,
    body: ProductUpdate,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
    _: WriteCaller,
) -> ProductRead:
    """Change a product's fields; send the ETag as If-Match (428 without, 412 when stale)."""
    await require_known(session, body.channels or ())
    product = await service.get_product(session, product_id=product_id)
    read = await service.update_product(
        session, product=product, changes=body, if_match=if_match, settings=settings
    )
    set_etag(response, read.version)
    return read


@router.post(
    "/products/{product_id}/variants",
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def add_variant(
    product_id: str,
    body: VariantCreate,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
    _: WriteCaller,
) -> ProductRead:
    """Add a variant (unique SKU, optional GTIN); If-Match is checked when sent."""
    product = await service.get_product(session, product_id=product_id)
    read = await service.add_variant(
        session, product=product, body=body, if_match=if_match, settings=settings
    )
    set_etag(response, read.version)
    return read


@router.get(
    "/reports/completeness",
    response_model=CompletenessReport,
    responses=problem_responses(400, 401, 403, 422),
)
async def completeness_report(
    session: SessionDep,
    settings: SettingsDep,
    _: ReadCaller,
    channel: Annotated[str, Query(pattern=CHANNEL_PATTERN)],
    below_threshold: Annotated[
        bool, Query(description="Only products not publishable to the channel")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> CompletenessReport:
    """Completeness of every non-archived product on a channel (share of its required attributes filled)."""
    after = cursor_id(cursor, str)
    await require_known(session, [channel])
    entries, last_id = await service.completeness_report(
        session, channel=channel, only_below=below_threshold, limit=limit, after_id=after, settings=settings
    )
    return CompletenessReport(items=entries, next_cursor=encode_cursor({"id": last_id}) if last_id else None)


@router.get("/search", response_model=ProductPage, responses=problem_responses(400, 401, 403, 422))
async def search_products(
    session: SessionDep,
    _: ReadCaller,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in name, description or attributes")
    ] = None,
    category_id: Annotated[str | None, Query(description="This category and its descendants")] = None,
    status: ProductStatus | None = None,
    attribute: Annotated[
        list[str], Query(description="code:value, repeatable; every one must match", max_length=20)
    ] = [],  # noqa: B006 (FastAPI copies the default)
    currency: Annotated[CurrencyCode | None, Query(description="Currency of the price range")] = None,
    min_price: Annotated[
        Decimal | None, Query(ge=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False)
    ] = None,
    max_price: Annotated[
        Decimal | None, Query(ge=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False)
    ] = None,
    stock: StockState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ProductPage:
    """Full-text search (all words, prefix match) with filters; cursor pagination in a stable order."""
    after = cursor_id(cursor, str)
    if (min_price is not None or max_price is not None) and currency is None:
        raise UnprocessableEntity("A price range needs a currency.")
    pairs = []
    for item in attribute:
        code, sep, value = item.partition(":")
        if not sep or not re.match(CODE_PATTERN, code):
            raise UnprocessableEntity(f"attribute filter {item[:100]!r} is not code:value")
        pairs.append((code, value))
    filters = SearchFilters(
        query=q,
        category_ids=await service.subtree_ids(session, category_id=category_id) if category_id else None,
        status=status,
        attributes=pairs,
        currency=currency,
        min_price_minor=int(min_price * 100) if min_price is not None else None,
        max_price_minor=int(max_price * 100) if max_price is not None else None,
        stock=stock,
    )
    rows = await search.search_products(session, filters=filters, after_id=after, limit=limit)
    items = [ProductSummary.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(rows) > limit and items else None
    return ProductPage(items=items, next_cursor=next_cursor)
