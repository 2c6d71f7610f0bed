"""Pricing routes: set prices (now or scheduled), read the price at a date, history, Omnibus lowest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from product_service.catalog.schemas import CHANNEL_PATTERN
from product_service.channels.service import require_known
from product_service.common import ReadCaller, WriteCaller
from product_service.pricing import promotions, service
from product_service.pricing.schemas import (
    CURRENCY_PATTERN,
    EffectivePriceRead,
    LowestPriceRead,
    PriceRead,
    PriceSet,
    PromotionCreate,
    PromotionRead,
    PromotionStatus,
    PromotionUpdate,
)
from servicekit.bounds import CurrencyCode, SaneDatetime
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http.concurrency import IfMatchDep, set_etag
from servicekit.http.pagination import Page, PageDep

router = APIRouter(prefix="/v1/prices", tags=["prices"])

CurrencyQuery = Annotated[CurrencyCode, Query()]
ChannelQuery = Annotated[str | None, Query(pattern=CHANNEL_PATTERN)]
AtQuery = Annotated[
    SaneDatetime | None, Query(description="A moment (RFC 3339) between 1900 and 2200; default now")
]


@router.post(
    "/{sku}",
    response_model=PriceRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def set_price(sku: str, body: PriceSet, session: SessionDep, caller: WriteCaller) -> PriceRead:
    """Append a price and cost for a SKU (per currency, optionally per channel), now or scheduled."""
    await require_known(session, [body.channel])
    record = await service.set_price(session, sku=sku, body=body, actor=caller.subject)
    return service.to_read(record)


@router.get("/{sku}", response_model=PriceRead, responses=problem_responses(401, 403, 404, 422))
async def price_at(
    sku: str,
    currency: CurrencyQuery,
    session: SessionDep,
    _: ReadCaller,
    channel: ChannelQuery = None,
    at: AtQuery = None,
) -> PriceRead:
    """The price in effect at a moment (default now); channels without own prices get the general one."""
    await require_known(session, [channel])
    record = await service.price_at(session, sku=sku, currency=currency, channel=channel, at=at)
    return service.to_read(record)


@router.get("/{sku}/history", response_model=Page[PriceRead], responses=problem_responses(400, 401, 403, 422))
async def history(
    sku: str,
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    currency: Annotated[str | None, Query(pattern=CURRENCY_PATTERN)] = None,
    channel: ChannelQuery = None,
) -> Page[PriceRead]:
    """Every price ever set for the SKU (who, when, why, source), scheduled ones included, oldest
    first; cursor pagination."""
    await require_known(session, [channel])
    return await service.history(session, sku=sku, currency=currency, channel=channel, page=page)


@router.get(
    "/{sku}/lowest-30d", response_model=LowestPriceRead, responses=problem_responses(401, 403, 404, 422)
)
async def lowest_30d(
    sku: str,
    currency: CurrencyQuery,
    session: SessionDep,
    _: ReadCaller,
    channel: ChannelQuery = None,
    at: AtQuery = None,
) -> LowestPriceRead:
    """The lowest price in effect during the 30 days before a moment: the EU Omnibus reference price."""
    await require_known(session, [channel])
    return await service.lowest_in_window(session, sku=sku, currency=currency, channel=channel, at=at)


promotions_router = APIRouter(prefix="/v1/promotions", tags=["prices"])


@promotions_router.post(
    "",
    response_model=PromotionRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_promotion(
    body: PromotionCreate, session: SessionDep, caller: WriteCaller, response: Response
) -> PromotionRead:
    """Define a promotion once (percentage or amount; SKUs or categories; channels; start and end)."""
    await require_known(session, body.channels)
    promotion = await promotions.create_promotion(session, body=body, actor=caller.subject)
    set_etag(response, promotion.version)
    return promotions.to_read(promotion)


@promotions_router.get("", response_model=Page[PromotionRead], responses=problem_responses(400, 401, 403))
async def list_promotions(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    status: Annotated[PromotionStatus | None, Query(description="Only those in this state now")] = None,
) -> Page[PromotionRead]:
    """Promotions, newest first; cursor pagination."""
    return await promotions.list_promotions(session, status=status, page=page)


@promotions_router.get(
    "/{promotion_id}", response_model=PromotionRead, responses=problem_responses(401, 403, 404)
)
async def get_promotion(
    promotion_id: str, session: SessionDep, _: ReadCaller, response: Response
) -> PromotionRead:
    """Read one promotion; the ETag is its version."""
    promotion = await promotions.get_promotion(session, promotion_id=promotion_id)
    set_etag(response, promotion.version)
    return promotions.to_read(promotion)


@promotions_router.patch(
    "/{promotion_id}",
    response_model=PromotionRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_promotion(
    promotion_id: str,
    body: PromotionUpdate,
    session: SessionDep,
    _: WriteCaller,
    if_match: IfMatchDep,
    response: Response,
) -> PromotionRead:
    """Change a promotion (If-Match: its ETag); once running, only its title and end can change."""
    await require_known(session, body.channels or ())
    promotion = await promotions.get_promotion(session, promotion_id=promotion_id)
    promotion = await promotions.update_promotion(
        session, promotion=promotion, changes=body, if_match=if_match
    )
    set_etag(response, promotion.version)
    return promotions.to_read(promotion)


@promotions_router.post(
    "/{promotion_id}/end",
    response_model=PromotionRead,
    responses=problem_responses(401, 403, 404, 409, 412),
)
async def end_promotion(
    promotion_id: str, session: SessionDep, _: WriteCaller, if_match: IfMatchDep, response: Response
) -> PromotionRead:
    """End a promotion now (a scheduled one is cancelled); 409 if it already ended."""
    promotion = await promotions.get_promotion(session, promotion_id=promotion_id)
    promotion = await promotions.end_promotion(session, promotion=promotion, if_match=if_match)
    set_etag(response, promotion.version)
    return promotions.to_read(promotion)


@router.get(
    "/{sku}/effective", response_model=EffectivePriceRead, responses=problem_responses(401, 403, 404, 422)
)
async def effective_price(
    sku: str,
    currency: CurrencyQuery,
    session: SessionDep,
    _: ReadCaller,
    channel: ChannelQuery = None,
    at: AtQuery = None,
) -> EffectivePriceRead:
    """The price a channel shows at a moment: the base price with the best running promotion applied."""
    await require_known(session, [channel])
    return await promotions.effective_price(session, sku=sku, currency=currency, channel=channel, at=at)
