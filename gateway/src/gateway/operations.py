"""What the `ecom users|clients|keys` commands and the seeder do, on the gateway's database directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import audit
from gateway.config import Settings
from gateway.security import SecretBox
from servicekit.db import Database

CLI_ACTOR = "cli"


@dataclass(frozen=True)
class Operations:
    settings: Settings
    box: SecretBox


@asynccontextmanager
async def gateway_session(database_url: str) -> AsyncIterator[tuple[AsyncSession, Operations]]:
    """A committed-on-success session on the gateway DB, with the settings from GATEWAY_* variables."""
    settings = Settings(database_url=database_url)
    database = Database(database_url)
    try:
        async with database.session() as session:
            yield session, Operations(settings, SecretBox(settings.key_encryption_key.get_secret_value()))
    finally:
        await database.dispose()


async def record(session: AsyncSession, action: str, *, target: str | None = None, **detail: object) -> None:
    await audit.record(session, action, actor=CLI_ACTOR, target=target, detail=dict(detail))
