"""Queries over customers: search with filters, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Exists, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.customers.models import Customer, CustomerConsentState, CustomerIdentifier, CustomerTag


@dataclass(frozen=True)
class CustomerFilters:
    tag: str | None = None
    country: str | None = None
    status: str = "active"
    consent: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    quality_min: float | None = None
    quality_max: float | None = None
    email_index: str | None = None
    phone_index: str | None = None


def _has_identifier(kind: str, index: str) -> Exists:
    return exists().where(
        col(CustomerIdentifier.customer_id) == col(Customer.id),
        col(CustomerIdentifier.kind) == kind,
        col(CustomerIdentifier.blind_index) == index,
    )


async def search(
    session: AsyncSession, *, filters: CustomerFilters, after_id: str | None, limit: int
) -> list[Customer]:
    """Up to limit+1 customers matching every filter, by id descending (ids are time-ordered UUIDv7)."""
    query = select(Customer).where(col(Customer.status) == filters.status)
    if filters.tag:
        query = query.where(
            exists().where(
                col(CustomerTag.customer_id) == col(Customer.id), col(CustomerTag.tag) == filters.tag
            )
        )
    if filters.country:
        query = query.where(col(Customer.country) == filters.country)
    if filters.consent:
        purpose, state = filters.consent.split(":", 1)
        held = exists().where(
            col(CustomerConsentState.customer_id) == col(Customer.id),
            col(CustomerConsentState.purpose) == purpose,
            *([col(CustomerConsentState.status) == state] if state != "none" else []),
        )
        query = query.where(~held if state == "none" else held)
    if filters.created_from:
        query = query.where(col(Customer.created_at) >= filters.created_from)
    if filters.created_to:
        query = query.where(col(Customer.created_at) < filters.created_to)
    if filters.updated_from:
        query = query.where(col(Customer.updated_at) >= filters.updated_from)
    if filters.updated_to:
        query = query.where(col(Customer.updated_at) < filters.updated_to)
    if filters.quality_min is not None:
        query = query.where(col(Customer.quality_score) >= filters.quality_min)
    if filters.quality_max is not None:
        query = query.where(col(Customer.quality_score) <= filters.quality_max)
    if filters.email_index:
        query = query.where(_has_identifier("email", filters.email_index))
    if filters.phone_index:
        query = query.where(_has_identifier("phone", filters.phone_index))
    if after_id is not None:
        query = query.where(col(Customer.id) < after_id)
    query = query.order_by(col(Customer.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars())
