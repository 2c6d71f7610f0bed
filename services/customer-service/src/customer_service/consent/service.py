"""Consent: an append-only ledger per purpose, the current state on the profile, an event per change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.customers import CustomerConsentChanged
from customer_service.consent.models import ConsentRecord
from customer_service.consent.schemas import ConsentChange, ConsentEntry, ConsentOverview
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.models import Customer, CustomerConsentState
from customer_service.customers.schemas import ConsentState
from servicekit.errors import Conflict
from servicekit.events import outbox


async def record(
    session: AsyncSession, context: CustomerContext, *, customer: Customer, change: ConsentChange
) -> ConsentRecord:
    """Append to the ledger and update the current state; emits consent_changed when the state changes.
    A record older than the current state's (`recorded_at`) only joins the ledger.

    The profile is locked and read again first (a no-op UPDATE of its row: a row lock on PostgreSQL, the
    write lock on SQLite), so a change recorded by a concurrent transaction that read the same profile is
    kept in the current state instead of being overwritten with what this one read before."""
    await session.flush()  # nothing of the profile pending is lost by reading it again
    await session.execute(
        update(Customer)
        .where(col(Customer.id) == customer.id)
        .values(version=col(Customer.version))
        .execution_options(synchronize_session=False)
    )
    await session.refresh(customer)
    if customer.status != "active":
        raise Conflict(f"Customer {customer.id} was merged into {customer.merged_into_id}.")
    stamp = customers.aware(change.recorded_at) if change.recorded_at else customers.now()
    entry = ConsentRecord(
        customer_id=customer.id,
        purpose=change.purpose,
        status=change.status,
        source=change.source,
        lawful_basis=change.lawful_basis,
        recorded_at=stamp,
    )
    session.add(entry)
    current = customer.consents.get(change.purpose)
    if current is not None and datetime.fromisoformat(current["recorded_at"]) > stamp:
        # A backdated record (a paper form, an older system's history) is history: the ledger keeps it,
        # the state the person expressed later stays current.
        await session.flush()
        return entry
    previous = current.get("status") if current is not None else None
    state = ConsentState(
        status=change.status, recorded_at=stamp, source=change.source, lawful_basis=change.lawful_basis
    )
    customer.consents = {**customer.consents, change.purpose: state.model_dump(mode="json")}
    await session.execute(
        delete(CustomerConsentState).where(
            col(CustomerConsentState.customer_id) == customer.id,
            col(CustomerConsentState.purpose) == change.purpose,
        )
    )
    session.add(CustomerConsentState(customer_id=customer.id, purpose=change.purpose, status=change.status))
    if previous != change.status:
        customer.version += 1
        customer.updated_at = customers.now()
        contact = customers.open_contact(context, customer)
        customers.compute_quality(
            customer, contact, open_duplicate=not customer.quality.get("no_open_duplicate", True)
        )
        await outbox.add(
            session,
            build_event(
                "ecom.customer.consent_changed.v1",
                CustomerConsentChanged(
                    customer_id=customer.id,
                    purpose=change.purpose,
                    status=change.status,
                    previous_status=previous,
                    source=change.source,
                    lawful_basis=change.lawful_basis,
                    changed_at=stamp,
                ),
                subject=customer.id,
                sequence=customer.version,
            ),
        )
    await session.flush()
    return entry


def to_entry(entry: ConsentRecord) -> ConsentEntry:
    assert entry.id is not None
    return ConsentEntry(
        id=entry.id,
        purpose=entry.purpose,
        status=entry.status,
        source=entry.source,
        lawful_basis=entry.lawful_basis,
        recorded_at=customers.aware(entry.recorded_at),
    )


async def overview(session: AsyncSession, *, customer: Customer) -> ConsentOverview:
    rows = (
        await session.execute(
            select(ConsentRecord)
            .where(col(ConsentRecord.customer_id) == customer.id)
            .order_by(col(ConsentRecord.id))
        )
    ).scalars()
    return ConsentOverview(
        customer_id=customer.id,
        current={k: ConsentState(**v) for k, v in customer.consents.items()},
        ledger=[to_entry(row) for row in rows],
    )
