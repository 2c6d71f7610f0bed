"""KPI routes: values over a date range with their change, as JSON or CSV; the definitions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from analytics_service.channels import ChannelFilter
from analytics_service.config import Settings
from analytics_service.http import ReadCaller
from analytics_service.kpis import service
from analytics_service.kpis.definitions import DEFINITIONS
from analytics_service.kpis.schemas import KpiDefinitionRead, KpiReport
from analytics_service.periods import DateRange, Granularity, checked_range
from servicekit.bounds import SaneDate
from servicekit.dependencies import DatabaseDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["kpis"])

ChannelQuery = Annotated[
    ChannelFilter,
    Query(min_length=1, max_length=50, description="Marketing channel, any letter case (stored lower-case)"),
]
CampaignQuery = Annotated[str | None, Query(max_length=100, description="UTM campaign ('' = none)")]


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]


async def date_range(start: SaneDate, end: SaneDate, settings: SettingsDep) -> DateRange:
    """The `start`..`end` query range (inclusive), 422 when inverted or too long."""
    return checked_range(start, end, max_days=settings.kpi_max_range_days)


RangeDep = Annotated[DateRange, Depends(date_range)]


@router.get(
    "/kpis",
    response_model=KpiReport,
    responses={**problem_responses(401, 403, 422), 200: {"content": {"text/csv": {}}}},
)
async def kpis(
    span: RangeDep,
    database: DatabaseDep,
    settings: SettingsDep,
    _: ReadCaller,
    granularity: Granularity = "day",
    channel: ChannelQuery = None,
    campaign: CampaignQuery = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """KPIs over `start`..`end` (inclusive) per day, week or month, filtered by channel and campaign, with
    the change against the previous period of the same length; `format=csv` for a CSV export."""
    filters = service.Filters(channel=channel, campaign=campaign, currency=settings.reporting_currency)
    async with database.read() as connection:
        result = await service.report(connection, span, granularity=granularity, filters=filters)
    if format == "csv":
        return Response(
            service.to_csv(result),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="kpis-{span.start}-{span.end}.csv"'},
        )
    return Response(result.model_dump_json(), media_type="application/json")


@router.get(
    "/kpis/definitions", response_model=list[KpiDefinitionRead], responses=problem_responses(401, 403)
)
async def kpi_definitions(_: ReadCaller) -> list[KpiDefinitionRead]:
    """Every KPI's name, version, unit and formula."""
    return [
        KpiDefinitionRead(name=d.name, version=d.version, unit=d.unit, formula=d.formula) for d in DEFINITIONS
    ]
