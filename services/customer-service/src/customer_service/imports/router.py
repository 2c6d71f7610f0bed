"""Bulk import routes: upload a CSV or NDJSON file as a job, follow its progress and error report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from pydantic import BaseModel

from customer_service.context import ContextDep
from customer_service.customers import service as customers
from customer_service.http import WriteCaller
from customer_service.imports import service
from customer_service.imports.models import ImportJob
from servicekit.db import Database
from servicekit.errors import FieldError, NotFound, UnprocessableEntity, problem_responses
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi

router = APIRouter(prefix="/v1/imports", tags=["imports"])

MAX_BYTES = 200 * 1024 * 1024


class RowError(BaseModel):
    row: int
    field: str | None
    reason: str


class ImportJobRead(BaseModel):
    id: str
    status: Literal["pending", "running", "succeeded", "failed"]
    format: str
    total_rows: int
    processed_rows: int
    created_count: int
    matched_count: int
    errors: list[RowError]
    created_at: datetime
    finished_at: datetime | None


def _read(job: ImportJob) -> ImportJobRead:
    data: dict[str, Any] = job.model_dump()
    data["created_at"] = customers.aware(job.created_at)
    data["finished_at"] = customers.aware(job.finished_at) if job.finished_at else None
    return ImportJobRead.model_validate(data)


def _format_of(upload: Upload, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = (upload.filename or "").lower()
    media = upload.content_type or ""
    if name.endswith((".ndjson", ".jsonl")) or "ndjson" in media or "jsonl" in media:
        return "ndjson"
    if name.endswith(".csv") or "csv" in media:
        return "csv"
    raise customers.unprocessable(
        "query.format", "Say format=csv or format=ndjson (or name the file .csv/.ndjson)."
    )


@router.post(
    "",
    status_code=202,
    response_model=ImportJobRead,
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra=upload_openapi(
        "text/csv",
        "application/x-ndjson",
        description="CSV (header row, see docs) or NDJSON (one customer per line)",
    ),
)
async def start_import(
    request: Request,
    background: BackgroundTasks,
    context: ContextDep,
    caller: WriteCaller,
    upload: Annotated[Upload, Depends(upload_dependency(MAX_BYTES))],
    format: Annotated[Literal["csv", "ndjson"] | None, Query()] = None,
) -> ImportJobRead:
    """Start importing customers from a file (multipart `file` part or the raw body); all rows are
    validated first, and a bad file imports nothing."""
    fmt = _format_of(upload, format)
    try:
        rows = await asyncio.to_thread(service.parse, upload.file, fmt)
    except service.FileError as exc:
        raise UnprocessableEntity(
            f"The file cannot be read, nothing was imported: {exc}.",
            extra={
                "errors": [FieldError(field="body.file", message=str(exc), type="file_invalid").model_dump()]
            },
        ) from None
    database: Database = request.app.state.database
    job = await service.create_job(database, fmt=fmt, actor=caller.subject, total_rows=len(rows))
    background.add_task(service.run, database, context, job_id=job.id, rows=rows, fmt=fmt)
    return _read(job)


@router.get("/{job_id}", response_model=ImportJobRead, responses=problem_responses(401, 403, 404))
async def read_import(job_id: str, request: Request, context: ContextDep, _: WriteCaller) -> ImportJobRead:
    """A job's status, progress (processed_rows of total_rows) and row-level error report."""
    job = await service.get(request.app.state.database, job_id, stale_after=context.import_stale_after)
    if job is None:
        raise NotFound(f"No import job {job_id}.")
    return _read(job)
