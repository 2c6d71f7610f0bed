"""Duplicate candidates, merge and undo."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from customer_service.context import ContextDep
from customer_service.customers import service as customers
from customer_service.customers.router import CustomerDep, PageDep
from customer_service.duplicates import merge_log, service
from customer_service.duplicates.models import DuplicateCandidate, Merge
from customer_service.duplicates.schemas import DuplicateRead, MergeRead, MergeRequest
from customer_service.http import ReadCaller, WriteCaller
from servicekit.dependencies import SessionDep
from servicekit.errors import BadRequest, NotFound, problem_responses
from servicekit.http.pagination import Page, cursor_key, make_page

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


@router.post(
    "/duplicates/{duplicate_id}/dismiss",
    response_model=DuplicateRead,
    responses=problem_responses(401, 403, 404),
)
async def dismiss_duplicate(duplicate_id: str, session: SessionDep, _: WriteCaller) -> DuplicateRead:
    """Mark a pair as not the same person; it is never proposed or merged automatically again."""
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
    key = cursor_key(page.cursor, ("id", str))
    rows = await merge_log.list_merges(
        session,
        survivor_id=survivor_id,
        automatic=automatic,
        before_id=key[0] if key else None,
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
