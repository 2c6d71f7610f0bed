"""Browser sessions for the dashboard: an opaque HttpOnly cookie, stored hashed, with a CSRF token."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import BrowserSession
from gateway.security import hash_secret, new_secret


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    csrf_token: str
    expires_at: int


async def create_session(session: AsyncSession, *, user_id: str, scope: str, ttl: int) -> NewSession:
    value = new_secret()
    csrf = secrets.token_urlsafe(24)
    expires_at = int(time.time()) + ttl
    session.add(
        BrowserSession(
            id_hash=hash_secret(value), user_id=user_id, csrf_token=csrf, scope=scope, expires_at=expires_at
        )
    )
    await session.flush()
    return NewSession(value, csrf, expires_at)


async def find_session(session: AsyncSession, cookie_value: str) -> BrowserSession | None:
    row = await session.get(BrowserSession, hash_secret(cookie_value))
    if row is None or row.revoked_at is not None or row.expires_at <= int(time.time()):
        return None
    return row


async def end_session(session: AsyncSession, cookie_value: str) -> None:
    row = await session.get(BrowserSession, hash_secret(cookie_value))
    if row is not None and row.revoked_at is None:
        row.revoked_at = int(time.time())
        await session.flush()
