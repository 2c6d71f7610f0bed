"""Key rotation: re-wrap data keys under the current master key, re-compute blind indexes under the
current blind-index key. Both work in batches, are idempotent and can be resumed at any point."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.context import CustomerContext
from customer_service.crypto import UnknownMasterKey, WrappedKey
from customer_service.customers import service as customers
from customer_service.customers.models import BlockingKey, Customer, CustomerIdentifier
from customer_service.customers.schemas import ExternalIdentity
from servicekit.errors import Conflict

BATCH = 500


async def rewrap_data_keys(
    session: AsyncSession, context: CustomerContext, *, limit: int | None = None
) -> int:
    """Re-wrap data keys still wrapped by an older master key; returns how many were re-wrapped.
    Once none are left, the old key can be removed from CUSTOMER_MASTER_KEYS."""
    keyring = context.keyring
    done = 0
    while limit is None or done < limit:
        batch = BATCH if limit is None else min(BATCH, limit - done)
        rows = (
            (
                await session.execute(
                    select(Customer)
                    .where(col(Customer.key_id).is_not(None), col(Customer.key_id) != keyring.current_kid)
                    .order_by(col(Customer.id))
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for customer in rows:
            assert customer.key_id is not None
            assert customer.wrapped_key is not None
            wrapped = keyring.wrap(keyring.unwrap(WrappedKey(customer.key_id, customer.wrapped_key)))
            customer.key_id, customer.wrapped_key = wrapped.kid, wrapped.blob
        await session.flush()
        done += len(rows)
    return done


async def count_by_key(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(col(Customer.key_id), func.count())
        .where(col(Customer.key_id).is_not(None))
        .group_by(col(Customer.key_id))
    )
    return {str(kid): int(n) for kid, n in rows.all()}


def _not_reindexed(context: CustomerContext) -> ColumnElement[bool]:
    return or_(col(Customer.index_key_id).is_(None), col(Customer.index_key_id) != context.keyring.blind_kid)


async def reindex_blind_indexes(session: AsyncSession, context: CustomerContext, *, limit: int) -> int:
    """Re-compute, under the current blind-index key, the identifiers (email, phone, external id) and
    blocking keys of up to `limit` customers still indexed under another key; returns how many.

    Emails and phones come from the decrypted profile, external ids from their stored clear value.
    Merged customers hold no identifiers (the survivor does): they are only marked done."""
    done = 0
    while done < limit:
        batch = list(
            (
                await session.execute(
                    select(Customer)
                    .where(_not_reindexed(context))
                    .order_by(col(Customer.id))
                    .limit(min(BATCH, limit - done))
                )
            ).scalars()
        )
        if not batch:
            break
        await _reindex(session, context, batch)
        done += len(batch)
    return done


async def _reindex(session: AsyncSession, context: CustomerContext, batch: Sequence[Customer]) -> None:
    active = [c for c in batch if c.status == "active"]
    ids = [c.id for c in active]
    external: dict[str, list[ExternalIdentity]] = {}
    if ids:
        rows = await session.execute(
            select(CustomerIdentifier)
            .where(
                col(CustomerIdentifier.customer_id).in_(ids),
                col(CustomerIdentifier.kind).startswith(customers.EXTERNAL_PREFIX),
            )
            .order_by(col(CustomerIdentifier.id))
        )
        for row in rows.scalars():
            external.setdefault(row.customer_id, []).append(customers.external_identity_of(row))
        await session.execute(delete(CustomerIdentifier).where(col(CustomerIdentifier.customer_id).in_(ids)))
        await session.execute(delete(BlockingKey).where(col(BlockingKey.customer_id).in_(ids)))
    stamp = customers.now()
    identifiers: list[dict[str, object]] = []
    keys: list[dict[str, object]] = []
    for customer in active:
        try:
            contact = (
                customers.open_contact(context, customer) if customer.wrapped_key else customers.Contact()
            )
        except UnknownMasterKey as exc:
            raise Conflict(f"Customer {customer.id} cannot be re-indexed: {exc}.") from None
        identifiers += customers.identifier_values(
            context, customer.id, contact, external.get(customer.id, []), stamp=stamp
        )
        keys += (
            {"customer_id": customer.id, "key": key}
            for key in sorted(customers.blocking_keys(context, customer, contact))
        )
    if identifiers:
        await session.execute(insert(CustomerIdentifier.__table__), identifiers)  # type: ignore[attr-defined]
    if keys:
        await session.execute(insert(BlockingKey.__table__), keys)  # type: ignore[attr-defined]
    for customer in batch:
        customer.index_key_id = context.keyring.blind_kid
    await session.flush()


async def count_by_index_key(session: AsyncSession) -> dict[str, int]:
    """Customers per blind-index key id (`unknown`: indexed before key ids were recorded)."""
    rows = await session.execute(
        select(col(Customer.index_key_id), func.count()).group_by(col(Customer.index_key_id))
    )
    return {str(kid) if kid is not None else "unknown": int(n) for kid, n in rows.all()}


async def remaining_to_reindex(session: AsyncSession, context: CustomerContext) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Customer).where(_not_reindexed(context))) or 0
    )
