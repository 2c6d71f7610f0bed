"""Consent and merges from ecom.customers.v1.

A merge re-points the merged customers' events, sessions, identity links and orders to the survivor
(keeping the id they had in `original_customer_id`) and recomputes the customers' metrics and first
orders, so new-customer counts and CLV move with them; an unmerge gives every row whose original id is a
restored customer back to that customer (or to whoever it is merged into now).
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.warehouse import customers
from analytics_service.warehouse.models import (
    ActivityEvent,
    CustomerConsent,
    CustomerProfile,
    IdentityLink,
    OrderFact,
    SessionFact,
)
from contracts import CloudEvent, parse_data
from contracts.catalog.customers import CustomerConsentChanged, CustomerMerged, CustomerUnmerged

OWNED = (ActivityEvent, IdentityLink, OrderFact)


async def on_consent_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Keep the latest decision per purpose. Withdrawing analytics consent also strips the customer's
    stored events and sessions of their identity and forgets the customer's anonymous ids."""
    change = parse_data(event)
    assert isinstance(change, CustomerConsentChanged)
    await customers.ensure_profiles(session, {change.customer_id: change.changed_at})
    held = await session.get(CustomerConsent, (change.customer_id, change.purpose))
    if held is not None and held.changed_at > change.changed_at:
        return
    if held is None:
        session.add(
            CustomerConsent(
                customer_id=change.customer_id,
                purpose=change.purpose,
                status=change.status,
                changed_at=change.changed_at,
            )
        )
    else:
        held.status, held.changed_at = change.status, change.changed_at
    await session.flush()
    if change.purpose == customers.ANALYTICS and change.status == "withdrawn":
        await strip_identity(session, change.customer_id)


async def strip_identity(session: AsyncSession, customer_id: str) -> None:
    """The customer's stored activity keeps counting in sessions and the funnel, without who it was."""
    owned = col(ActivityEvent.customer_id) == customer_id
    original = col(ActivityEvent.original_customer_id) == customer_id
    await session.execute(
        update(ActivityEvent)
        .where(owned | original)
        .values(customer_id=None, original_customer_id=None, anonymous_id=None)
    )
    await session.execute(
        update(SessionFact)
        .where(col(SessionFact.customer_id) == customer_id)
        .values(customer_id=None, anonymous_id=None)
    )
    for link in await session.scalars(
        select(IdentityLink).where(
            (col(IdentityLink.customer_id) == customer_id)
            | (col(IdentityLink.original_customer_id) == customer_id)
        )
    ):
        await session.delete(link)
    await session.flush()


async def on_merged(session: AsyncSession, event: CloudEvent, *, reporting_currency: str) -> None:
    merge = parse_data(event)
    assert isinstance(merge, CustomerMerged)
    survivor = merge.survivor_customer_id
    merged = [cid for cid in merge.merged_customer_ids if cid != survivor]
    await customers.ensure_profiles(session, dict.fromkeys([survivor, *merged], merge.merged_at))
    await session.execute(
        update(CustomerProfile)
        .where(col(CustomerProfile.customer_id).in_(merged))
        .values(merged_into=survivor, merge_id=merge.merge_id)
    )
    for table in OWNED:
        await session.execute(
            update(table)
            .where(col(table.customer_id).in_(merged))
            .values(
                original_customer_id=func.coalesce(col(table.original_customer_id), col(table.customer_id)),
                customer_id=survivor,
            )
        )
    await session.execute(
        update(SessionFact).where(col(SessionFact.customer_id).in_(merged)).values(customer_id=survivor)
    )
    await customers.refresh(session, [survivor, *merged], reporting_currency=reporting_currency)


async def on_unmerged(session: AsyncSession, event: CloudEvent, *, reporting_currency: str) -> None:
    unmerge = parse_data(event)
    assert isinstance(unmerge, CustomerUnmerged)
    survivor = unmerge.survivor_customer_id
    restored = [cid for cid in unmerge.restored_customer_ids if cid != survivor]
    await session.execute(
        update(CustomerProfile)
        .where(col(CustomerProfile.customer_id).in_(restored), col(CustomerProfile.merged_into) == survivor)
        .values(merged_into=None, merge_id=None)
    )
    # Rows held by the survivor for another original id go back to that id's owner now.
    originals: set[str | None] = set()
    for table in OWNED:
        originals.update(
            (
                await session.scalars(
                    select(col(table.original_customer_id))
                    .where(col(table.customer_id) == survivor, col(table.original_customer_id).isnot(None))
                    .distinct()
                )
            ).all()
        )
    owners = await customers.survivors(session, [o for o in originals if o is not None])
    moved = {original: owner for original, owner in owners.items() if owner != survivor}
    for original, owner in moved.items():
        for table in OWNED:
            await session.execute(
                update(table)
                .where(col(table.customer_id) == survivor, col(table.original_customer_id) == original)
                .values(customer_id=owner, original_customer_id=original if owner != original else None)
            )
    sessions_of = (
        select(col(ActivityEvent.session_id))
        .where(
            col(ActivityEvent.customer_id).in_(list(set(moved.values()))),
            col(ActivityEvent.session_id).isnot(None),
        )
        .distinct()
    )
    for owner in set(moved.values()):
        await session.execute(
            update(SessionFact)
            .where(
                col(SessionFact.customer_id) == survivor,
                col(SessionFact.session_id).in_(sessions_of.where(col(ActivityEvent.customer_id) == owner)),
            )
            .values(customer_id=owner)
        )
    await customers.refresh(
        session, [survivor, *restored, *moved.values()], reporting_currency=reporting_currency
    )
