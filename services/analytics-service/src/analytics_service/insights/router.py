"""Funnel and retention cohort routes."""

from __future__ import annotations

from fastapi import APIRouter

from analytics_service.http import ReadCaller
from analytics_service.insights import service
from analytics_service.insights.schemas import Cohorts, Funnel
from analytics_service.kpis.router import ChannelQuery, DatabaseDep, RangeDep
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
