"""Recommendation routes (read from precomputed neighbours: fast enough for a product page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from analytics_service.http import ReadCaller
from analytics_service.recommendations import service
from analytics_service.recommendations.schemas import RecommendationList
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])

LimitQuery = Annotated[int, Query(ge=1, le=50, description="Recommendations to return")]


@router.get(
    "/products/{sku}", response_model=RecommendationList, responses=problem_responses(401, 403, 404, 422)
)
async def bought_together(
    sku: Annotated[str, Path(min_length=1, max_length=100)],
    session: SessionDep,
    _: ReadCaller,
    limit: LimitQuery = 10,
) -> RecommendationList:
    """Bought together: SKUs the customers who bought this SKU also bought, published and in stock."""
    return await service.for_product(session, sku=sku, limit=limit)


@router.get(
    "/customers/{customer_id}",
    response_model=RecommendationList,
    responses=problem_responses(401, 403, 404, 422),
)
async def for_customer(
    customer_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
    _: ReadCaller,
    limit: LimitQuery = 10,
) -> RecommendationList:
    """Personal recommendations from the customer's purchases and views, each with its reason; never what
    they bought, nor unpublished or out-of-stock SKUs; bestsellers only without personalisation consent."""
    return await service.for_customer(session, customer_id=customer_id, limit=limit)
