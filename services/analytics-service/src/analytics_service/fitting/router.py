"""Model runs: start a refit, see which fit is served."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, status

from analytics_service.config import Settings
from analytics_service.fitting import service
from analytics_service.fitting.schemas import ModelRunRead, ModelStatus
from analytics_service.http import AdminCaller, ReadCaller
from servicekit.db import Database
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post(
    "/refit",
    response_model=ModelRunRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 409),
)
async def refit(request: Request, background: BackgroundTasks, caller: AdminCaller) -> ModelRunRead:
    """Refit forecasts, recommendations and CLV now, in the background; 409 while a refit runs."""
    database: Database = request.app.state.database
    settings: Settings = request.app.state.runtime.settings
    run = await service.start_run(
        database, trigger="api", actor=caller.subject, stale_after_s=settings.model_refit_stale_s
    )
    background.add_task(service.run_refit, database, settings, run_id=run.id)
    return ModelRunRead.model_validate(run)


@router.get("", response_model=ModelStatus, responses=problem_responses(401, 403))
async def model_status(request: Request, _: ReadCaller) -> ModelStatus:
    """Which fit the forecasts, recommendations and CLV come from, and the latest run."""
    database: Database = request.app.state.database
    settings: Settings = request.app.state.runtime.settings
    fitted = await service.latest_run(database, status="succeeded")
    latest = await service.latest_run(database)
    return ModelStatus(
        fitted=ModelRunRead.model_validate(fitted) if fitted else None,
        latest=ModelRunRead.model_validate(latest) if latest else None,
        refit_interval_s=settings.model_refit_interval_s,
    )
