"""Whether the user or client behind a token is still allowed in, and which tokens were revoked.

Services only see the JWT, so a disabled client's token stays valid there until it expires (at most
the access-token lifetime). The gateway checks the status on every call, cached for a few seconds.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select
from sqlmodel import col

from gateway.models import ApiClient, RevokedToken, User
from servicekit.db import Database


class PrincipalStatus:
    def __init__(self, database: Database, *, cache_seconds: float = 5.0) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self._active: dict[str, tuple[bool, float]] = {}
        self._revoked: set[str] = set()
        self._revoked_loaded_at = -math.inf

    async def is_active(self, subject: str) -> bool:
        now = time.monotonic()
        cached = self._active.get(subject)
        if cached is not None and now - cached[1] < self.cache_seconds:
            return cached[0]
        async with self.database.session() as session:
            if subject.startswith("usr_"):
                user = await session.get(User, subject)
                active = user is not None and user.status == "active"
            else:
                client = await session.get(ApiClient, subject)
                active = client is not None and client.status == "active"
        if len(self._active) > 50_000:
            self._active.clear()
        self._active[subject] = (active, now)
        return active

    async def is_revoked(self, jti: str | None) -> bool:
        now = time.monotonic()
        if now - self._revoked_loaded_at >= self.cache_seconds:
            async with self.database.session() as session:
                rows = await session.scalars(
                    select(col(RevokedToken.jti)).where(col(RevokedToken.expires_at) > int(time.time()))
                )
                self._revoked = set(rows.all())
            self._revoked_loaded_at = now
        return jti is not None and jti in self._revoked

    def forget(self, subject: str | None = None) -> None:
        """Drop cached answers (after a change made by this process)."""
        if subject is None:
            self._active.clear()
        else:
            self._active.pop(subject, None)
        self._revoked_loaded_at = -math.inf
