"""The sales-file route of POS channels."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, FieldError, UnprocessableEntity, problem_responses
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi
from sync_service.channels.service import get_channel
from sync_service.common import SalesCaller
from sync_service.sales import service
from sync_service.sales.schemas import SalesReport
from sync_service.webhooks import mark

router = APIRouter(prefix="/v1/channels", tags=["POS sales"])

MAX_SALES_FILE_BYTES = 50 * 1024 * 1024


def _format_of(upload: Upload, explicit: str | None) -> Literal["csv", "ndjson"]:
    name = (upload.filename or "").lower()
    media = upload.content_type or ""
    if explicit == "ndjson" or name.endswith((".ndjson", ".jsonl")) or "ndjson" in media or "jsonl" in media:
        return "ndjson"
    if explicit == "csv" or name.endswith(".csv") or "csv" in media:
        return "csv"
    raise UnprocessableEntity(
        "Say format=csv or format=ndjson (or send text/csv, application/x-ndjson, or a .csv/.ndjson file).",
        extra={"errors": [{"field": "query.format", "message": "unknown file format", "type": "missing"}]},
    )


@router.post(
    "/{channel_id}/sales",
    response_model=SalesReport,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
    openapi_extra=upload_openapi(
        "text/csv",
        "application/x-ndjson",
        description="CSV with the header receipt_id,line,sku,quantity,price,store,time[,loyalty_id], or "
        "NDJSON with one such object per line",
    ),
)
async def upload_sales(
    channel_id: str,
    request: Request,
    session: SessionDep,
    _: SalesCaller,
    upload: Annotated[Upload, Depends(upload_dependency(MAX_SALES_FILE_BYTES))],
    format: Annotated[Literal["csv", "ndjson"] | None, Query()] = None,
    on_error: Annotated[
        service.OnError,
        Query(
            description="refuse: any row error refuses the whole file (nothing recorded); skip_receipt: "
            "receipts without errors are recorded, the others reported"
        ),
    ] = "refuse",
) -> SalesReport:
    """A store's end-of-day sales file: each receipt recorded once (by receipt id) and placed as a POS
    order by customer-service; every problem reported by file line."""
    channel = await get_channel(session, channel_id=channel_id)
    if channel.kind != "pos":
        mark(request.scope, "not_pos")
        raise UnprocessableEntity(
            f"Channel {channel.code} is a {channel.kind} channel; sales come from POS channels."
        )
    if channel.status == "retired":
        mark(request.scope, "retired_channel")
        raise Conflict(f"Channel {channel.code} is retired.")
    fmt = _format_of(upload, format)
    try:
        rows = await asyncio.to_thread(service.parse, upload.file, fmt)
    except service.SalesFileError as exc:
        mark(request.scope, "malformed_file")
        raise UnprocessableEntity(
            f"The file cannot be read, nothing was recorded: {exc}.",
            extra={
                "errors": [FieldError(field="body.file", message=str(exc), type="file_invalid").model_dump()]
            },
        ) from None
    try:
        return await service.record(session, channel=channel, rows=rows, on_error=on_error)
    except service.SalesRefused as refused:
        mark(request.scope, "row_errors")
        raise UnprocessableEntity(
            f"{len(refused.report.errors)} problem(s) in the file, nothing was recorded "
            "(on_error=skip_receipt records the receipts without errors).",
            extra={"report": refused.report.model_dump(mode="json")},
        ) from None
