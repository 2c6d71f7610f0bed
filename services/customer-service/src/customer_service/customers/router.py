"""Customer profile routes: create, identify, read, update, search; PII masked unless customers:pii."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from customer_service.context import ContextDep, CustomerContext
from customer_service.customers import repository, service
from customer_service.customers.models import Customer
from customer_service.customers.schemas import (
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    IdentifyRequest,
    IdentifyResult,
    PiiReadEntry,
)
from customer_service.http import (
    PrivacyCaller,
    ReadCaller,
    WriteCaller,
    current_request_id,
    route_of,
    sees_pii,
)
from servicekit.auth import Caller
from servicekit.bounds import SaneDatetime
from servicekit.dependencies import SessionDep
from servicekit.errors import Conflict, problem_responses
from servicekit.http import idempotency
from servicekit.http.concurrency import IfMatchDep, etag_for, set_etag
from servicekit.http.idempotency import IdempotencyKeyDep
from servicekit.http.pagination import Page, PageParams, cursor_value, make_page, page_params

router = APIRouter(prefix="/v1", tags=["customers"])

PageDep = Annotated[PageParams, Depends(page_params)]


async def get_customer_or_404(customer_id: str, session: SessionDep) -> Customer:
    return await service.get(session, customer_id=customer_id)


CustomerDep = Annotated[Customer, Depends(get_customer_or_404)]


async def render(
    session: AsyncSession,
    context: CustomerContext,
    request: Request,
    caller: Caller,
    customers: list[Customer],
) -> list[CustomerRead]:
    """The API view of customers, masked unless the caller holds customers:pii (then audited)."""
    masked = not sees_pii(caller)
    views = [await service.to_read(session, context, c, masked=masked) for c in customers]
    if not masked and customers:
        await service.record_pii_reads(
            session,
            customer_ids=[c.id for c in customers],
            caller=caller,
            route=route_of(request),
            request_id=current_request_id(),
        )
    return views


async def _respond_with_customer(
    session: AsyncSession,
    context: CustomerContext,
    request: Request,
    caller: Caller,
    customer: Customer,
    *,
    status: int,
    created: bool | None = None,
    replayed: bool = False,
) -> JSONResponse:
    (view,) = await render(session, context, request, caller, [customer])
    body: Any = view if created is None else IdentifyResult(created=created, customer=view)
    headers = {"ETag": etag_for(customer.version)}
    if status == 201:
        headers["Location"] = f"/v1/customers/{customer.id}"
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _replay(
    session: AsyncSession,
    context: CustomerContext,
    request: Request,
    caller: Caller,
    *,
    scope: str,
    key: str | None,
    fingerprint: str,
    identify: bool,
) -> JSONResponse | None:
    """A repeat of an idempotent request re-renders the customer it resolved to (the stored answer holds
    only the customer id, so no PII rests in the idempotency table)."""
    if key is None:
        return None
    stored = await idempotency.lookup(session, scope=scope, key=key, request_fingerprint=fingerprint)
    if stored is None:
        return None
    reference = json.loads(stored.body)
    customer = await service.get(session, customer_id=reference["customer_id"])
    return await _respond_with_customer(
        session,
        context,
        request,
        caller,
        customer,
        status=stored.status_code,
        created=reference["created"] if identify else None,
        replayed=True,
    )


async def _remember(
    session: AsyncSession,
    *,
    scope: str,
    key: str | None,
    fingerprint: str,
    status: int,
    customer: Customer,
    created: bool,
) -> None:
    if key is None:
        return
    body = json.dumps({"customer_id": customer.id, "created": created}).encode()
    await idempotency.remember(
        session, scope=scope, key=key, request_fingerprint=fingerprint, status_code=status, body=body
    )


@router.post(
    "/customers",
    status_code=201,
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    session: SessionDep,
    context: ContextDep,
    caller: WriteCaller,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """Create a customer profile (validated, normalised, PII encrypted); accepts Idempotency-Key."""
    scope = f"customers.create:{caller.subject}"
    fingerprint = idempotency.fingerprint(body.model_dump(mode="json"))
    replay = await _replay(
        session,
        context,
        request,
        caller,
        scope=scope,
        key=idempotency_key,
        fingerprint=fingerprint,
        identify=False,
    )
    if replay is not None:
        return replay
    customer = await service.create(session, context, data=body)
    await _remember(
        session,
        scope=scope,
        key=idempotency_key,
        fingerprint=fingerprint,
        status=201,
        customer=customer,
        created=True,
    )
    return await _respond_with_customer(session, context, request, caller, customer, status=201)


@router.post(
    "/customers/identify",
    response_model=IdentifyResult,
    responses={
        **problem_responses(401, 403, 409, 422),
        201: {"model": IdentifyResult, "description": "A new customer was created"},
    },
)
async def identify_customer(
    body: IdentifyRequest,
    request: Request,
    session: SessionDep,
    context: ContextDep,
    caller: WriteCaller,
    idempotency_key: IdempotencyKeyDep,
) -> JSONResponse:
    """The customer matching any of the identifiers (200), or a new one (201); accepts Idempotency-Key."""
    scope = f"customers.identify:{caller.subject}"
    fingerprint = idempotency.fingerprint(body.model_dump(mode="json"))
    replay = await _replay(
        session,
        context,
        request,
        caller,
        scope=scope,
        key=idempotency_key,
        fingerprint=fingerprint,
        identify=True,
    )
    if replay is not None:
        return replay
    customer, created = await service.identify(session, context, request=body)
    if customer.status == "merged" and customer.merged_into_id:
        customer = await service.get(session, customer_id=customer.merged_into_id)
    status = 201 if created else 200
    await _remember(
        session,
        scope=scope,
        key=idempotency_key,
        fingerprint=fingerprint,
        status=status,
        customer=customer,
        created=created,
    )
    return await _respond_with_customer(
        session, context, request, caller, customer, status=status, created=created
    )


@router.get(
    "/customers",
    response_model=Page[CustomerRead],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_customers(
    request: Request,
    session: SessionDep,
    context: ContextDep,
    caller: ReadCaller,
    page: PageDep,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    status: Annotated[str, Query(pattern="^(active|merged)$")] = "active",
    consent: Annotated[
        str | None, Query(pattern=r"^[a-z_]+:(granted|withdrawn|none)$", description="purpose:state")
    ] = None,
    created_from: SaneDatetime | None = None,
    created_to: SaneDatetime | None = None,
    updated_from: SaneDatetime | None = None,
    updated_to: SaneDatetime | None = None,
    quality_min: Annotated[float | None, Query(ge=0, le=1)] = None,
    quality_max: Annotated[float | None, Query(ge=0, le=1)] = None,
    email: Annotated[str | None, Query(max_length=320, description="Exact match")] = None,
    phone: Annotated[str | None, Query(max_length=40, description="Exact match, any format")] = None,
) -> JSONResponse:
    """Search customers with filters, newest first, cursor-paginated; exact lookup by email or phone."""
    after = cursor_value(page.cursor, "id", str)
    filters = repository.CustomerFilters(
        tag=tag.lower() if tag else None,
        country=country.upper() if country else None,
        status=status,
        consent=consent,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_from,
        updated_to=updated_to,
        quality_min=quality_min,
        quality_max=quality_max,
        email_index=service.lookup_index(context, "email", email) if email else None,
        phone_index=service.lookup_index(context, "phone", phone) if phone else None,
    )
    rows = await repository.search(session, filters=filters, after_id=after, limit=page.limit)
    result = make_page(rows, page.limit, lambda c: {"id": c.id})
    views = await render(session, context, request, caller, result.items)
    return JSONResponse(
        Page[CustomerRead](items=views, next_cursor=result.next_cursor).model_dump(mode="json")
    )


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404),
)
async def read_customer(
    customer: CustomerDep,
    request: Request,
    session: SessionDep,
    context: ContextDep,
    caller: ReadCaller,
    response: Response,
) -> CustomerRead:
    """Read one customer (PII masked unless you hold customers:pii; unmasked reads are audited)."""
    (view,) = await render(session, context, request, caller, [customer])
    set_etag(response, customer.version)
    return view


@router.patch(
    "/customers/{customer_id}",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_customer(
    customer: CustomerDep,
    body: CustomerUpdate,
    request: Request,
    session: SessionDep,
    context: ContextDep,
    caller: WriteCaller,
    if_match: IfMatchDep,
    response: Response,
) -> CustomerRead:
    """Change the fields sent; If-Match with the ETag you read is required (412 when stale)."""
    if customer.status != "active":
        raise Conflict(f"Customer {customer.id} was merged into {customer.merged_into_id}; update that one.")
    customer = await service.update(session, context, customer=customer, changes=body, expected=if_match)
    (view,) = await render(session, context, request, caller, [customer])
    set_etag(response, customer.version)
    return view


@router.get(
    "/audit/pii-reads",
    response_model=Page[PiiReadEntry],
    tags=["privacy"],
    responses=problem_responses(400, 401, 403),
)
async def list_pii_reads(
    session: SessionDep,
    _: PrivacyCaller,
    page: PageDep,
    customer_id: str | None = None,
) -> Page[PiiReadEntry]:
    """The audit log of unmasked PII reads (who read which customer, when, through which route)."""
    after = cursor_value(page.cursor, "id", int)
    rows = await service.list_pii_reads(session, customer_id=customer_id, after_id=after, limit=page.limit)
    entries = [
        PiiReadEntry.model_validate({**row.model_dump(), "read_at": service.aware(row.read_at)})
        for row in rows
    ]
    return make_page(entries, page.limit, lambda e: {"id": e.id})
