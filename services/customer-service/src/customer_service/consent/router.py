"""Consent routes: record a decision, read the current state and the ledger."""

from __future__ import annotations

from fastapi import APIRouter

from customer_service.consent import service
from customer_service.consent.schemas import ConsentChange, ConsentEntry, ConsentOverview
from customer_service.context import ContextDep
from customer_service.customers.router import CustomerDep
from customer_service.http import ReadCaller, WriteCaller
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/customers/{customer_id}/consents", tags=["consent"])


@router.post(
    "", status_code=201, response_model=ConsentEntry, responses=problem_responses(401, 403, 404, 409, 422)
)
async def record_consent(
    customer: CustomerDep, body: ConsentChange, session: SessionDep, context: ContextDep, _: WriteCaller
) -> ConsentEntry:
    """Record that the customer granted or withdrew consent for a purpose (source and lawful basis)."""
    entry = await service.record(session, context, customer=customer, change=body)
    return service.to_entry(entry)


@router.get("", response_model=ConsentOverview, responses=problem_responses(401, 403, 404))
async def read_consents(customer: CustomerDep, session: SessionDep, _: ReadCaller) -> ConsentOverview:
    """The current consent per purpose and the full ledger, oldest first."""
    return await service.overview(session, customer=customer)
