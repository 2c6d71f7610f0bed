"""Funnel and retention cohort routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from analytics_service.http import ReadCaller
from analytics_service.insights import service
from analytics_service.insights.schemas import Cohorts, Funnel, ProductSeries, TopProduct
from analytics_service.kpis.router import ChannelQuery, RangeDep
from servicekit.dependencies import DatabaseDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["insights"])


@router.get("/funnel", response_model=Funnel, responses=problem_responses(401, 403, 422))
async def funnel(
    span: RangeDep, database: DatabaseDep, _: ReadCaller, channel: ChannelQuery = None
) -> Funnel:
    """Sessions started in `start`..`end` that reached each step (viewed -> added -> checkout ->
    purchased), with step conversion and drop-off, in total and per channel."""
    async with database.read() as connection:
        return await service.funnel(connection, span, channel=channel)


@router.get("/cohorts", response_model=Cohorts, responses=problem_responses(401, 403, 422))
async def cohorts(span: RangeDep, database: DatabaseDep, _: ReadCaller) -> Cohorts:
    """Monthly retention cohorts of the customers whose first order falls in `start`..`end`."""
    async with database.read() as connection:
        return await service.cohorts(connection, span)


@router.get("/products/top", response_model=list[TopProduct], responses=problem_responses(401, 403, 422))
async def top_products(
    span: RangeDep, database: DatabaseDep, _: ReadCaller, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[TopProduct]:
    """The SKUs with the most revenue over `start`..`end`, with views, cart adds, orders and units."""
    async with database.read() as connection:
        return await service.top_products(connection, span, limit=limit)


@router.get(
    "/products/{sku}/daily", response_model=ProductSeries, responses=problem_responses(401, 403, 404, 422)
)
async def product_daily(
    sku: Annotated[str, Path(min_length=1, max_length=100)],
    span: RangeDep,
    database: DatabaseDep,
    _: ReadCaller,
) -> ProductSeries:
    """A SKU's views, cart adds, removals, orders, units, revenue and cost per day of `start`..`end`;
    404 for a SKU neither the catalog nor any event knows."""
    async with database.read() as connection:
        return await service.product_series(connection, sku, span)
