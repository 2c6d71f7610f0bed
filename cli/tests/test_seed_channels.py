"""`ecom seed` for sync-service: a migrated database gets the channel registry, once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from ecom_cli.commands.seed import database_url_for, run_seeders
from ecom_cli.seeders.channels import SEEDER
from servicekit.db import Database
from servicekit.events.models import OutboxMessage
from servicekit.migrations import upgrade
from sync_service.channels.models import Channel
from sync_service.config import ALEMBIC_INI


async def _rows(url: str) -> tuple[list[Channel], list[OutboxMessage]]:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            channels = list((await session.execute(select(Channel))).scalars().all())
            events = list((await session.execute(select(OutboxMessage))).scalars().all())
            return channels, events
    finally:
        await database.dispose()


def test_channel_seed_registers_a_web_store_two_stores_a_marketplace_and_a_feed_once(tmp_path: Path) -> None:
    url = database_url_for(SEEDER, tmp_path)
    upgrade(ALEMBIC_INI, url)
    console = Console(file=io.StringIO(), width=200)

    first = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))
    second = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))

    assert (first, second) == (1, 0)
    channels, events = asyncio.run(_rows(url))
    kinds = sorted(c.kind for c in channels)
    assert kinds == ["feed", "pos", "pos", "webhook", "webhook"]
    assert {c.code for c in channels} == {"web", "store_paris", "store_berlin", "marketplace", "google"}
    pushed = [c for c in channels if c.kind != "feed"]
    assert all(c.endpoint and c.endpoint.endswith(f"/channels/{c.code}/listings") for c in pushed)
    assert all(not c.secret_ciphertext.startswith("whsec_") for c in channels)
    assert sorted(e.event_type for e in events) == ["ecom.channel.registered.v1"] * 5
