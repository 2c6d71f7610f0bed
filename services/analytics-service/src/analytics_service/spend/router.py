"""Marketing spend (JSON or CSV) and expenses: what CAC and net profit margin subtract."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from analytics_service.http import ReadCaller, WriteCaller
from analytics_service.kpis.router import ChannelQuery, RangeDep, SettingsDep
from analytics_service.spend import service
from analytics_service.spend.schemas import ExpenseCreate, ExpenseRead, SpendBatch, SpendRead, SpendResult
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses
from servicekit.http import idempotency
from servicekit.http.idempotency import IdempotencyKeyDep
from servicekit.http.uploads import Upload, upload_dependency, upload_openapi

router = APIRouter(prefix="/v1", tags=["spend"])

MAX_SPEND_FILE_BYTES = 2 * 1024 * 1024


@router.post("/spend", response_model=SpendResult, responses=problem_responses(401, 403, 422))
async def record_spend(
    body: SpendBatch, session: SessionDep, settings: SettingsDep, _: WriteCaller
) -> SpendResult:
    """Record marketing spend per day, channel and campaign (an entry for a key already recorded replaces
    its amount; two entries for one key are 422); amounts in the reporting currency."""
    count = len(body.entries)
    service.refuse_repeated_keys(
        body.entries,
        places=[f"entries[{index}]" for index in range(count)],
        fields=[f"body.entries.{index}" for index in range(count)],
    )
    count = await service.record_spend(
        session, entries=body.entries, reporting_currency=settings.reporting_currency
    )
    return SpendResult(recorded=count)


@router.post(
    "/spend/upload",
    response_model=SpendResult,
    responses=problem_responses(401, 403, 413, 415, 422),
    openapi_extra=upload_openapi("text/csv", description="CSV: day, channel, campaign, amount, currency"),
)
async def upload_spend(
    session: SessionDep,
    settings: SettingsDep,
    _: WriteCaller,
    upload: Annotated[Upload, Depends(upload_dependency(MAX_SPEND_FILE_BYTES))],
) -> SpendResult:
    """Record marketing spend from a CSV (columns day, channel, campaign, amount, currency); a file with
    one bad row, or two rows for one day x channel x campaign, is refused whole, naming the line(s)."""
    entries = await asyncio.to_thread(service.read_spend_csv, upload.file)
    count = await service.record_spend(
        session, entries=entries, reporting_currency=settings.reporting_currency
    )
    return SpendResult(recorded=count)


@router.get("/spend", response_model=list[SpendRead], responses=problem_responses(401, 403, 422))
async def list_spend(
    span: RangeDep, session: SessionDep, _: ReadCaller, channel: ChannelQuery = None
) -> list[SpendRead]:
    """Spend recorded for the days of `start`..`end`, optionally of one channel."""
    return await service.list_spend(session, span=span, channel=channel)


@router.post(
    "/expenses", status_code=201, response_model=ExpenseRead, responses=problem_responses(401, 403, 422)
)
async def add_expense(
    body: ExpenseCreate,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriteCaller,
    idempotency_key: IdempotencyKeyDep,
) -> Any:
    """Record an operating expense of a day (subtracted in net profit margin). Send an Idempotency-Key to
    make a retry return the first answer instead of recording the expense twice."""

    async def add() -> ExpenseRead:
        return await service.add_expense(session, body=body, reporting_currency=settings.reporting_currency)

    return await idempotency.once(session, f"expenses:{caller.subject}", idempotency_key, body, add)


@router.get("/expenses", response_model=list[ExpenseRead], responses=problem_responses(401, 403, 422))
async def list_expenses(span: RangeDep, session: SessionDep, _: ReadCaller) -> list[ExpenseRead]:
    """Expenses recorded for the days of `start`..`end`."""
    return await service.list_expenses(session, span=span)
