"""The track API: storefront events in batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from analytics_service.config import Settings
from analytics_service.http import TrackCaller
from analytics_service.tracking import service
from analytics_service.tracking.schemas import TrackBatch, TrackResult
from servicekit.dependencies import TransactionDep
from servicekit.errors import UnprocessableEntity, problem_responses
from servicekit.http.limits import item_problems

router = APIRouter(prefix="/v1", tags=["tracking"])


async def track_limits(request: Request) -> service.TrackLimits:
    settings: Settings = request.app.state.settings
    return service.TrackLimits(
        max_future=timedelta(seconds=settings.track_max_future_seconds),
        max_age=timedelta(days=settings.track_max_age_days),
        max_properties_bytes=settings.track_max_properties_bytes,
    )


@router.post(
    "/track", status_code=202, response_model=TrackResult, responses=problem_responses(401, 403, 413, 422)
)
async def track(
    body: TrackBatch,
    transaction: TransactionDep,
    _: TrackCaller,
    limits: Annotated[service.TrackLimits, Depends(track_limits)],
    request: Request,
) -> TrackResult:
    """Track a batch of storefront events: each is checked on its own; rejected ones are listed by index
    with their reasons, the others are accepted (published on ecom.activity.v1)."""
    settings: Settings = request.app.state.settings
    if len(body.batch) > settings.track_max_batch:
        raise UnprocessableEntity(f"A batch holds at most {settings.track_max_batch} events.")
    unreadable = {index: str(problem) for index, problem in item_problems(request.scope).items()}
    return await service.track(transaction, batch=body.batch, limits=limits, unreadable=unreadable)
