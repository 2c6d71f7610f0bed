"""Progressive lockout after repeated login failures, per account and per IP."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import LoginThrottle
from gateway.users import normalize_email
from servicekit.db import dialect_insert


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int
    base_seconds: int
    max_seconds: int

    def lock_seconds(self, failures: int) -> int:
        """0 below the threshold, then base, 2*base, 4*base ... capped."""
        if failures < self.threshold:
            return 0
        return int(min(self.max_seconds, self.base_seconds * 2 ** (failures - self.threshold)))


def account_key(email: str) -> str:
    return f"account:{normalize_email(email)}"


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


async def locked_for(session: AsyncSession, key: str) -> int:
    """Seconds until `key` may try again (0 when it is not locked)."""
    row = await session.get(LoginThrottle, key)
    if row is None or row.locked_until is None:
        return 0
    return max(0, row.locked_until - int(time.time()))


async def register_failure(session: AsyncSession, key: str, policy: LockoutPolicy) -> int:
    """Count a failure; returns the lock duration it started (0 when it did not lock). The count is one
    atomic upsert (INSERT … ON CONFLICT DO UPDATE SET failures = failures + 1 RETURNING failures), so
    failures racing each other are all counted (a read-then-write lost some, letting guesses sent at
    once past the threshold) and the first failures of a key do not clash on its row (a 500 on
    PostgreSQL)."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    statement = dialect_insert(session)(table).values(key=key, failures=1)
    counted = statement.on_conflict_do_update(
        index_elements=[table.c.key], set_={"failures": table.c.failures + 1}
    ).returning(table.c.failures)
    failures = int((await session.execute(counted)).scalar_one())
    seconds = policy.lock_seconds(failures)
    if seconds:
        await session.execute(
            update(table).where(table.c.key == key).values(locked_until=int(time.time()) + seconds)
        )
    _forget(session, key)
    return seconds


async def register_success(session: AsyncSession, key: str) -> None:
    """Reset the key's count (one DELETE: a concurrent success that deleted it first is not an error)."""
    await session.execute(delete(LoginThrottle).where(col(LoginThrottle.key) == key))
    _forget(session, key)


def _forget(session: AsyncSession, key: str) -> None:
    """Expire the session's copy of the key's row, if it read one: it was changed in SQL."""
    for item in list(session.identity_map.values()):
        if isinstance(item, LoginThrottle) and item.key == key:
            session.expire(item)
