"""The top products route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from analytics_service.http import ReadCaller
from analytics_service.kpis.router import DatabaseDep, RangeDep, SettingsDep
from analytics_service.topsellers import service
from analytics_service.topsellers.schemas import TopProducts
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["products"])


@router.get("/top-products", response_model=TopProducts, responses=problem_responses(401, 403, 422))
async def top_products(
    span: RangeDep,
    database: DatabaseDep,
    settings: SettingsDep,
    _: ReadCaller,
    by: service.Ranking = "revenue",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopProducts:
    """The best-selling SKUs of `start`..`end` (inclusive) by revenue or units, from counted orders in the
    reporting currency (every channel: the per-SKU rollup is not split by channel), with their views."""
    async with database.read() as connection:
        return await service.top_products(
            connection, span, by=by, limit=limit, currency=settings.reporting_currency
        )
