"""Master key rotation: re-wrap every data key under the current master key (data stays as it is)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.context import CustomerContext
from customer_service.crypto import WrappedKey
from customer_service.customers.models import Customer

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
    from sqlalchemy import func

    rows = await session.execute(
        select(col(Customer.key_id), func.count())
        .where(col(Customer.key_id).is_not(None))
        .group_by(col(Customer.key_id))
    )
    return {str(kid): int(n) for kid, n in rows.all()}
