"""`ecom sync replay` on a migrated sync-service database: failed listings go back to pending."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from ecom_cli.commands.sync import sync_database_url
from ecom_cli.main import app
from servicekit.db import Database
from servicekit.migrations import upgrade
from sync_service.channels import service as channels
from sync_service.channels.schemas import ChannelCreate
from sync_service.config import ALEMBIC_INI
from sync_service.listings.models import Listing
from sync_service.push.deliveries import Sent, delivery_row
from sync_service.push.models import Delivery

runner = CliRunner()


async def _failed_listing(url: str) -> None:
    database = Database(url)
    try:
        async with database.session() as session:
            body = ChannelCreate(
                code="shop", name="Shop", kind="webhook", endpoint="http://127.0.0.1:9/x", currency="EUR"
            )
            channel, _ = await channels.register_channel(session, body=body, secrets_key="k" * 32)
            now = datetime.now(UTC)
            session.add(
                Listing(
                    channel_id=channel.id,
                    sku="SKU-1",
                    product_id="p-1",
                    desired={"sku": "SKU-1"},
                    desired_hash="h",
                    desired_seq=1,
                    desired_at=now,
                    publishable=True,
                    status="failed",
                    last_error="HTTP 500",
                    created_at=now,
                    updated_at=now,
                )
            )
            sent = [Sent(sku="SKU-1", seq=1, digest="h", publishable=True, desired_at=now)]
            row = delivery_row(
                channel_id=channel.id,
                sent=sent,
                outcome="failed",
                attempts=4,
                status_code=500,
                error="HTTP 500",
                latency_ms=None,
                started_at=now,
            )
            session.add(Delivery(**row))
    finally:
        await database.dispose()


async def _statuses(url: str) -> list[str]:
    database = Database(url)
    try:
        async with database.session() as session:
            return list((await session.execute(select(Listing.status))).scalars().all())
    finally:
        await database.dispose()


def test_replay_puts_a_channels_failed_listings_back_to_pending_once(tmp_path: Path) -> None:
    url = sync_database_url(tmp_path)
    upgrade(ALEMBIC_INI, url)
    asyncio.run(_failed_listing(url))

    first = runner.invoke(app, ["sync", "replay", "shop", "--var-dir", str(tmp_path)])
    second = runner.invoke(app, ["sync", "replay", "shop", "--var-dir", str(tmp_path)])
    unknown = runner.invoke(app, ["sync", "replay", "nowhere", "--var-dir", str(tmp_path)])

    assert first.exit_code == 0, first.output
    assert "shop: 1 listing(s) queued for a push again" in first.output
    assert "nothing to replay" in second.output
    assert asyncio.run(_statuses(url)) == ["pending"]
    assert unknown.exit_code == 1
    assert "no channel with code 'nowhere'" in unknown.output
