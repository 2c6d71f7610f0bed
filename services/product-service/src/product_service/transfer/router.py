"""Bulk import (a job with progress and a row-level error report) and streamed export of the catalog."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.responses import StreamingResponse

from product_service.common import ReadCaller, WriteCaller, cursor_id
from product_service.transfer import service
from product_service.transfer.models import ImportJob
from product_service.transfer.schemas import (
    ImportErrorPage,
    ImportJobPage,
    ImportJobRead,
    ImportRowErrorRead,
    ImportStatus,
    TransferFormat,
)
from servicekit.dependencies import SessionDep, get_database
from servicekit.errors import problem_responses
from servicekit.http.pagination import encode_cursor
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi

router = APIRouter(prefix="/v1", tags=["import and export"])

MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


@router.post(
    "/imports",
    response_model=ImportJobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 413, 422),
    openapi_extra=upload_openapi(
        "text/csv", "application/x-ndjson", description="CSV or NDJSON, one row per SKU"
    ),
)
async def start_import(
    request: Request,
    caller: WriteCaller,
    upload: Annotated[Upload, Depends(upload_dependency(MAX_UPLOAD_BYTES))],
    format: Annotated[TransferFormat, Query()] = "csv",
) -> ImportJob:
    """Upload a CSV or NDJSON file (one row per SKU, upsert by SKU) as a multipart `file` part or the raw
    body; it is processed as a job, and a structurally broken file fails the job and imports nothing."""
    database = get_database(request)
    job = await service.create_job(database, fmt=format, size=upload.size, actor=caller.subject)
    jobs: set[asyncio.Task[None]] = request.app.state.__dict__.setdefault("import_jobs", set())
    source = upload.detach()
    task = asyncio.create_task(service.run_import(database, job.id, source, format), name=f"import-{job.id}")
    jobs.add(task)
    task.add_done_callback(jobs.discard)
    return job


@router.get("/imports", response_model=ImportJobPage, responses=problem_responses(400, 401, 403, 422))
async def list_imports(
    session: SessionDep,
    _: ReadCaller,
    status: Annotated[ImportStatus | None, Query(description="Only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ImportJobPage:
    """Import jobs, newest first, with their status and progress; cursor pagination."""
    before = cursor_id(cursor, str)
    jobs = await service.list_jobs(session, status=status, before_id=before, limit=limit)
    items = [ImportJobRead.model_validate(job, from_attributes=True) for job in jobs[:limit]]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(jobs) > limit and items else None
    return ImportJobPage(items=items, next_cursor=next_cursor)


@router.get("/imports/{job_id}", response_model=ImportJobRead, responses=problem_responses(401, 403, 404))
async def get_import(job_id: str, session: SessionDep, _: ReadCaller) -> ImportJob:
    """An import job's status and progress (rows processed, created, updated, failed)."""
    return await service.get_job(session, job_id=job_id)


@router.get(
    "/imports/{job_id}/errors",
    response_model=ImportErrorPage,
    responses=problem_responses(400, 401, 403, 404),
)
async def import_errors(
    job_id: str,
    session: SessionDep,
    _: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> ImportErrorPage:
    """The rows an import refused, with the reason; none of them wrote anything."""
    await service.get_job(session, job_id=job_id)
    after = cursor_id(cursor, int)
    rows = await service.job_errors(session, job_id=job_id, after_id=after, limit=limit)
    items = [ImportRowErrorRead(row_number=r.row_number, sku=r.sku, message=r.message) for r in rows[:limit]]
    last = rows[limit - 1].id if len(rows) > limit else None
    return ImportErrorPage(items=items, next_cursor=encode_cursor({"id": last}) if last is not None else None)


EXPORT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The catalog as CSV or NDJSON (one JSON object per line), by `format`.",
        "content": {
            MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
            MEDIA_TYPES["ndjson"]: {"schema": {"type": "string"}},
        },
        "headers": {
            "Content-Disposition": {
                "description": "attachment; filename=products.csv or products.ndjson",
                "schema": {"type": "string"},
            }
        },
    }
}


@router.get(
    "/exports/products",
    response_class=StreamingResponse,
    responses={**EXPORT_RESPONSE, **problem_responses(401, 403, 422)},
)
async def export_products(
    request: Request, _: ReadCaller, format: Annotated[TransferFormat, Query()] = "csv"
) -> StreamingResponse:
    """The whole catalog, one row per SKU, in the import format (streamed)."""
    return StreamingResponse(
        service.export_catalog(get_database(request), format),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="products.{format}"'},
    )


async def stop_imports(app: FastAPI) -> None:
    """On shutdown, stop running import jobs: each is failed with the rows it got to (import the file
    again: rows are upserts by SKU)."""
    jobs: set[asyncio.Task[None]] = app.state.__dict__.get("import_jobs", set())
    for task in list(jobs):
        task.cancel()
    for task in list(jobs):
        with contextlib.suppress(BaseException):
            await task
