"""Forecast and reorder routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from analytics_service.config import Settings
from analytics_service.forecasting import service
from analytics_service.forecasting.schemas import ForecastRead, ReorderSuggestionList
from analytics_service.forecasting.supply import supply_terms
from analytics_service.http import ReadCaller
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["forecasts"])

SkuPath = Annotated[str, Path(min_length=1, max_length=100)]
LocationQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, description="A location id; all locations when absent")
]


@router.get(
    "/forecasts/{sku}", response_model=ForecastRead, responses=problem_responses(401, 403, 404, 409, 422)
)
async def get_forecast(
    sku: SkuPath,
    request: Request,
    session: SessionDep,
    _: ReadCaller,
    location: LocationQuery = None,
    days: Annotated[int, Query(ge=1, le=366, description="Days to return (up to the stored horizon)")] = 28,
) -> ForecastRead:
    """Daily demand forecast of a SKU with its prediction interval, available stock and days of cover."""
    settings: Settings = request.app.state.runtime.settings
    return await service.forecast(session, sku=sku, location=location, days=days, settings=settings)


@router.get(
    "/reorder-suggestions",
    response_model=ReorderSuggestionList,
    responses=problem_responses(401, 403, 409, 422),
)
async def reorder_suggestions(
    request: Request,
    session: SessionDep,
    _: ReadCaller,
    location: LocationQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReorderSuggestionList:
    """SKUs to reorder now (stock position at or below the reorder point), quantities from the forecast,
    the supplier's lead time and minimum order quantity; the most urgent first."""
    settings: Settings = request.app.state.runtime.settings
    supply = await supply_terms(settings.product_service_url, request.headers.get("authorization"))
    return await service.reorder_suggestions(
        session, location=location, limit=limit, settings=settings, supply=supply
    )
