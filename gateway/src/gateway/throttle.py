"""Progressive lockout after repeated login failures, per account and per IP."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import LoginThrottle
from gateway.users import normalize_email


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
    """Count a failure; returns the lock duration it started (0 when it did not lock)."""
    row = await session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0)
        session.add(row)
    row.failures += 1
    seconds = policy.lock_seconds(row.failures)
    if seconds:
        row.locked_until = int(time.time()) + seconds
    await session.flush()
    return seconds


async def register_success(session: AsyncSession, key: str) -> None:
    row = await session.get(LoginThrottle, key)
    if row is not None:
        await session.delete(row)
        await session.flush()
