"""Bulk import routes: upload a CSV or NDJSON file as a job, follow its progress and error report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from customer_service.context import ContextDep
from customer_service.customers import service as customers
from customer_service.customers.router import PageDep
from customer_service.http import WriteCaller
from customer_service.imports import service, workers
from customer_service.imports.models import ImportJob
from servicekit.db import Database
from servicekit.errors import FieldError, NotFound, UnprocessableEntity, problem_responses
from servicekit.http.pagination import Page, cursor_value, make_page
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi

router = APIRouter(prefix="/v1/imports", tags=["imports"])

MAX_BYTES = 200 * 1024 * 1024


class RowError(BaseModel):
    row: int
    field: str | None
    reason: str
    dropped: bool = Field(default=False, description="drop_field mode: the row was kept without this field")


class ImportRowRead(BaseModel):
    row: int = Field(description="1-based data row of the file")
    outcome: Literal["created", "matched", "merged", "skipped", "refused"]
    customer_id: str | None = Field(description="The customer the row created, matched or was merged into")
    errors: list[RowError]


class ImportJobRead(BaseModel):
    id: str
    status: Literal["pending", "running", "succeeded", "failed"]
    format: str
    total_rows: int
    processed_rows: int
    created_count: int
    matched_count: int
    skipped_count: int
    on_error: Literal["refuse", "skip_row", "drop_field"]
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
    on_error: Annotated[
        Literal["refuse", "skip_row", "drop_field"],
        Query(
            description="What a row with an invalid field does: refuse the whole file (nothing imported), "
            "skip that row, or keep the row without the invalid field. Every mode reports each problem."
        ),
    ] = "refuse",
) -> ImportJobRead:
    """Start importing customers from a file (multipart `file` part or the raw body); all rows are
    validated first (see on_error for bad rows), and a file that cannot be read imports nothing."""
    fmt = _format_of(upload, format)
    workers.warm(  # started while the file is read, if not running
        context.import_validation_processes, scoring=context.import_scoring_process
    )
    try:
        rows = await asyncio.to_thread(service.parse, upload.file, fmt)
    except service.FileError as exc:
        raise UnprocessableEntity(
            f"The file cannot be read, nothing was imported: {str(exc).rstrip('.')}.",
            extra={
                "errors": [FieldError(field="body.file", message=str(exc), type="file_invalid").model_dump()]
            },
        ) from None
    database: Database = request.app.state.database
    job = await service.create_job(
        database, fmt=fmt, actor=caller.subject, total_rows=len(rows), on_error=on_error
    )
    background.add_task(service.run, database, context, job_id=job.id, rows=rows, fmt=fmt, on_error=on_error)
    return _read(job)


@router.get("", response_model=Page[ImportJobRead], responses=problem_responses(400, 401, 403, 422))
async def list_imports(
    request: Request,
    context: ContextDep,
    _: WriteCaller,
    page: PageDep,
    status: Annotated[
        Literal["pending", "running", "succeeded", "failed"] | None,
        Query(description="Only jobs in this state"),
    ] = None,
) -> Page[ImportJobRead]:
    """Import jobs, newest first, with their status and progress; cursor pagination."""
    before = cursor_value(page.cursor, "id", str)
    jobs = await service.list_jobs(
        request.app.state.database,
        status=status,
        before_id=before,
        limit=page.limit,
        stale_after=context.import_stale_after,
    )
    result = make_page(jobs, page.limit, lambda job: {"id": job.id})
    return Page[ImportJobRead](items=[_read(job) for job in result.items], next_cursor=result.next_cursor)


@router.get("/{job_id}", response_model=ImportJobRead, responses=problem_responses(401, 403, 404))
async def read_import(job_id: str, request: Request, context: ContextDep, _: WriteCaller) -> ImportJobRead:
    """A job's status, progress (processed_rows of total_rows) and row-level error report."""
    job = await service.get(request.app.state.database, job_id, stale_after=context.import_stale_after)
    if job is None:
        raise NotFound(f"No import job {job_id}.")
    return _read(job)


async def _job_or_404(request: Request, context: ContextDep, job_id: str) -> ImportJob:
    job = await service.get(request.app.state.database, job_id, stale_after=context.import_stale_after)
    if job is None:
        raise NotFound(f"No import job {job_id}.")
    return job


@router.get(
    "/{job_id}/rows",
    response_model=Page[ImportRowRead],
    responses=problem_responses(400, 401, 403, 404),
)
async def read_import_rows(
    job_id: str,
    request: Request,
    context: ContextDep,
    _: WriteCaller,
    page: PageDep,
    outcome: Annotated[Literal["created", "matched", "merged", "skipped", "refused"] | None, Query()] = None,
) -> Page[ImportRowRead]:
    """What became of each row: the customer it created, matched or was merged into, or why it was not."""
    await _job_or_404(request, context, job_id)
    after = cursor_value(page.cursor, "row", int)
    rows = await service.row_results(
        request.app.state.database, job_id, outcome=outcome, after_row=after, limit=page.limit
    )
    result = make_page(rows, page.limit, lambda r: {"row": r.row})
    return Page[ImportRowRead](
        items=[
            ImportRowRead(row=r.row, outcome=r.outcome, customer_id=r.customer_id, errors=r.errors)
            for r in result.items
        ],
        next_cursor=result.next_cursor,
    )


@router.get(
    "/{job_id}/rows.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(401, 403, 404)},
)
async def download_import_rows(
    job_id: str, request: Request, context: ContextDep, _: WriteCaller
) -> Response:
    """Every row's result as CSV: row, outcome, customer_id, errors."""
    await _job_or_404(request, context, job_id)
    content = await service.row_results_csv(request.app.state.database, job_id)
    return Response(content, media_type="text/csv", headers=_attachment(f"import-{job_id}-rows.csv"))


@router.get(
    "/{job_id}/rejected",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        **problem_responses(401, 403, 404),
    },
)
async def download_rejected_rows(
    job_id: str, request: Request, context: ContextDep, _: WriteCaller
) -> Response:
    """The rows not imported whole, as sent plus an `errors` column (CSV jobs) or key (NDJSON jobs):
    fix them and upload the file again."""
    job = await _job_or_404(request, context, job_id)
    content = await service.rejected_rows(request.app.state.database, job)
    if job.format == "csv":
        return Response(content, media_type="text/csv", headers=_attachment(f"import-{job_id}-rejected.csv"))
    return Response(
        content, media_type="application/x-ndjson", headers=_attachment(f"import-{job_id}-rejected.ndjson")
    )


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
