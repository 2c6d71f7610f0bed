"""API models of model runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str = Field(description="running, succeeded or failed")
    trigger: str = Field(description="api or schedule")
    started_at: datetime
    finished_at: datetime | None
    data_until: date = Field(description="The last day of history the models saw")
    summary: dict[str, Any] = Field(description="Series, customers and SKUs fitted, CLV parameters")
    error: str | None


class ModelStatus(BaseModel):
    fitted: ModelRunRead | None = Field(description="The run whose models are served (latest succeeded)")
    latest: ModelRunRead | None = Field(description="The latest run, whatever its status")
    refit_interval_s: int = Field(description="Seconds between scheduled refits (0: only on request)")
