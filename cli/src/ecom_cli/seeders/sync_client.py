"""sync-service's own gateway client (role `sync`: `products:read`), with which a full resync reads the
catalogue from product-service's API. Its id and secret go to a file under the var directory (mode 0600)
that `ecom dev` reads to set SYNC_CLIENT_ID and SYNC_CLIENT_SECRET; a development convenience only."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from ecom_cli.seeding import SeedContext, Seeder
from ecom_cli.stack import SYNC_CLIENT_FILE_VAR

CLIENT_NAME = "sync-service"


def _client_file() -> Path | None:
    path = os.environ.get(SYNC_CLIENT_FILE_VAR)
    return Path(path) if path else None


async def is_empty(database_url: str) -> bool:
    """No active client of role `sync` yet, or its secret is no longer at hand (the file is gone)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from gateway.models import ApiClient
    from servicekit.db import Database

    path = _client_file()
    if path is not None and not path.exists():
        return True
    database = Database(database_url)
    try:
        async with database.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ApiClient)
                .where(col(ApiClient.role) == "sync", col(ApiClient.status) == "active")
            )
    finally:
        await database.dispose()
    return not count


def _write(path: Path, client_id: str, secret: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"client_id": client_id, "client_secret": secret}, file, indent=2)


async def seed(context: SeedContext) -> str:
    from gateway.clients import create_client
    from gateway.operations import gateway_session, record

    async with gateway_session(context.database_url) as (session, _ops):
        client, secret = await create_client(session, name=CLIENT_NAME, role="sync")
        await record(
            session, "client.create", target=client.client_id, role="sync", name=CLIENT_NAME, seeded=True
        )
    path = _client_file()
    if path is None:
        return (
            f"sync-service client {client.client_id} (role sync: products:read), secret {secret} (shown once)"
        )
    await asyncio.to_thread(_write, path, client.client_id, secret)
    return f"sync-service client {client.client_id} (role sync: products:read), its secret in {path}"


SEEDER = Seeder(name="sync_client", service="gateway", is_empty=is_empty, seed=seed, order=12)
