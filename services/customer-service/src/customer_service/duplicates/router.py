"""Duplicate candidates, merge and undo."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request

from customer_service.context import ContextDep, CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.router import CustomerDep, PageDep
from customer_service.duplicates import jobs, merge_log, service
from customer_service.duplicates.linkage import Model
from customer_service.duplicates.matching import LEVELS
from customer_service.duplicates.model_store import stored_model
from customer_service.duplicates.models import DuplicateCandidate, DuplicateJob, Merge
from customer_service.duplicates.schemas import (
    ClusterRead,
    DuplicateJobRead,
    DuplicateRead,
    LinkageModelRead,
    MergeRead,
    MergeRequest,
)
from customer_service.http import ReadCaller, WriteCaller
from servicekit.auth import Caller
from servicekit.db import Database
from servicekit.dependencies import SessionDep
from servicekit.errors import BadRequest, NotFound, problem_responses
from servicekit.http.pagination import Page, cursor_value, make_page

router = APIRouter(prefix="/v1", tags=["duplicates"])


def _duplicate(row: DuplicateCandidate) -> DuplicateRead:
    return DuplicateRead(
        id=row.id,
        customer_a_id=row.customer_a_id,
        customer_b_id=row.customer_b_id,
        score=row.score,
        evidence=row.evidence,
        status=row.status,
        created_at=customers.aware(row.created_at),
        updated_at=customers.aware(row.updated_at),
    )


def _merge(row: Merge) -> MergeRead:
    return MergeRead(
        id=row.id,
        survivor_id=row.survivor_id,
        merged_ids=row.merged_ids,
        automatic=row.automatic,
        score=row.score,
        actor=row.actor,
        created_at=customers.aware(row.created_at),
        undone_at=customers.aware(row.undone_at) if row.undone_at else None,
    )


@router.get("/duplicates", response_model=Page[DuplicateRead], responses=problem_responses(400, 401, 403))
async def list_duplicates(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    status: Annotated[str, Query(pattern="^(open|merged|dismissed|superseded)$")] = "open",
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    customer_id: str | None = None,
) -> Page[DuplicateRead]:
    """Candidate duplicate pairs with their score and per-field evidence, highest score first."""
    after: tuple[float, str] | None = None
    if page.cursor:
        score, last_id = page.cursor.get("score"), page.cursor.get("id")
        if not isinstance(score, int | float) or not isinstance(last_id, str):
            raise BadRequest("The cursor is not valid.")
        after = (float(score), last_id)
    rows = await service.list_candidates(
        session, status=status, min_score=min_score, customer_id=customer_id, after=after, limit=page.limit
    )
    result = make_page(rows, page.limit, lambda r: {"score": r.score, "id": r.id})
    return Page[DuplicateRead](items=[_duplicate(r) for r in result.items], next_cursor=result.next_cursor)


@router.get(
    "/customers/{customer_id}/duplicate-cluster",
    response_model=ClusterRead,
    responses=problem_responses(401, 403, 404),
)
async def read_cluster(customer: CustomerDep, session: SessionDep, _: ReadCaller) -> ClusterRead:
    """The cluster of probable duplicates this profile belongs to (one person's records), with the pairs."""
    members, pairs = await service.cluster_of(session, customer_id=customer.id)
    return ClusterRead(customer_ids=members, pairs=[_duplicate(p) for p in pairs])


@router.post(
    "/duplicates/{duplicate_id}/dismiss",
    response_model=DuplicateRead,
    responses=problem_responses(401, 403, 404, 409),
)
async def dismiss_duplicate(duplicate_id: str, session: SessionDep, _: WriteCaller) -> DuplicateRead:
    """Mark a pair as not the same person; never proposed or auto-merged again (409 if already merged)."""
    row = await service.dismiss(session, duplicate_id=duplicate_id)
    return _duplicate(row)


@router.post(
    "/customers/{customer_id}/merge",
    status_code=201,
    response_model=MergeRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def merge_customers(
    customer: CustomerDep, body: MergeRequest, session: SessionDep, context: ContextDep, caller: WriteCaller
) -> MergeRead:
    """Fold other profiles into this one (survivorship rules); orders and consents move; undoable."""
    others = []
    for other_id in dict.fromkeys(body.customer_ids):
        try:
            others.append(await customers.get(session, customer_id=other_id))
        except NotFound:
            raise customers.unprocessable("body.customer_ids", f"No customer {other_id}.") from None
    record = await service.merge(session, context, survivor=customer, others=others, actor=caller.subject)
    return _merge(record)


@router.get("/merges", response_model=Page[MergeRead], responses=problem_responses(400, 401, 403))
async def list_merges(
    session: SessionDep,
    _: ReadCaller,
    page: PageDep,
    survivor_id: Annotated[str | None, Query(max_length=36, description="Merges into this customer")] = None,
    automatic: Annotated[bool | None, Query(description="Only automatic (or only manual) merges")] = None,
) -> Page[MergeRead]:
    """Merges, newest first, an automatic one included, so any can be read and undone; cursor pages."""
    before = cursor_value(page.cursor, "id", str)
    rows = await merge_log.list_merges(
        session,
        survivor_id=survivor_id,
        automatic=automatic,
        before_id=before,
        limit=page.limit + 1,
    )
    result = make_page(list(rows), page.limit, lambda merge: {"id": merge.id})
    return Page[MergeRead](items=[_merge(row) for row in result.items], next_cursor=result.next_cursor)


@router.get("/merges/{merge_id}", response_model=MergeRead, responses=problem_responses(401, 403, 404))
async def read_merge(merge_id: str, session: SessionDep, _: ReadCaller) -> MergeRead:
    """One merge's lineage: survivor, merged profiles, who or what merged them, whether undone."""
    return _merge(await service.get_merge(session, merge_id=merge_id))


@router.post(
    "/merges/{merge_id}/undo",
    response_model=MergeRead,
    responses=problem_responses(401, 403, 404, 409),
)
async def undo_merge(merge_id: str, session: SessionDep, context: ContextDep, _: WriteCaller) -> MergeRead:
    """Restore the merged profiles and the survivor as they were; 409 if the survivor changed since."""
    record = await service.get_merge(session, merge_id=merge_id)
    return _merge(await service.undo(session, context, record=record))


def _job(job: DuplicateJob) -> DuplicateJobRead:
    return DuplicateJobRead(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        processed=job.processed,
        total=job.total,
        result=job.result,
        error=job.error,
        created_at=customers.aware(job.created_at),
        finished_at=customers.aware(job.finished_at) if job.finished_at else None,
    )


@router.get("/duplicates/model", response_model=LinkageModelRead, responses=problem_responses(401, 403))
async def read_model(session: SessionDep, context: ContextDep, _: ReadCaller) -> LinkageModelRead:
    """The linkage model in use: m and u per comparison level, the weights, when and on what it was fitted."""
    record = await stored_model(session)
    model = Model.from_json(record.params) if record is not None else Model()
    return LinkageModelRead(
        id=record.id if record is not None else None,
        trained_at=customers.aware(record.trained_at) if record is not None else None,
        prior=model.prior,
        levels={name: list(levels) for name, levels in LEVELS.items()},
        m=model.m,
        u=model.u,
        weights={
            f: [round(math.log2(m / u), 3) for m, u in zip(model.m[f], model.u[f], strict=True)]
            for f in LEVELS
        },
        stats=model.stats,
        duplicate_threshold=context.duplicate_threshold,
        auto_merge_threshold=context.auto_merge_threshold,
        auto_merge_enabled=context.auto_merge_enabled,
    )


@router.post(
    "/duplicates/model/train",
    status_code=202,
    response_model=DuplicateJobRead,
    responses=problem_responses(401, 403, 409),
)
async def train_model(
    request: Request, background: BackgroundTasks, context: ContextDep, caller: WriteCaller
) -> DuplicateJobRead:
    """Fit the linkage model to the current profiles (EM, unsupervised) as a job; 409 if one is running."""
    return await _start_job(request, background, context, caller, kind=jobs.TRAIN, run=jobs.run_training)


@router.post(
    "/duplicates/rescan",
    status_code=202,
    response_model=DuplicateJobRead,
    responses=problem_responses(401, 403, 409),
)
async def rescan(
    request: Request, background: BackgroundTasks, context: ContextDep, caller: WriteCaller
) -> DuplicateJobRead:
    """Compare the whole base with the current model as a job; pairs not known yet are listed as open."""
    return await _start_job(request, background, context, caller, kind=jobs.RESCAN, run=jobs.run_rescan)


async def _start_job(
    request: Request,
    background: BackgroundTasks,
    context: CustomerContext,
    caller: Caller,
    *,
    kind: str,
    run: Callable[..., Awaitable[None]],
) -> DuplicateJobRead:
    """Record a job (409 while one runs) and run it in the background."""
    database: Database = request.app.state.database
    job = await jobs.create_job(
        database, kind=kind, actor=caller.subject, stale_after=context.import_stale_after
    )
    background.add_task(run, database, context, job_id=job.id)
    return _job(job)


@router.get(
    "/duplicates/jobs/{job_id}", response_model=DuplicateJobRead, responses=problem_responses(401, 403, 404)
)
async def read_job(job_id: str, request: Request, _: ReadCaller) -> DuplicateJobRead:
    """A training or re-scan job: status, progress (processed of total profiles), result or error."""
    return _job(await jobs.get_job(request.app.state.database, job_id))
