"""Seed sync-service: the channel registry of a small retailer — a web store, two physical stores (POS),
a marketplace and a Google Shopping feed.

Writes through sync_service's own service functions, so the signing secrets are generated and stored
encrypted and each registration lands in the outbox (ecom.channel.registered.v1), which product-service
turns into the channel codes it accepts once the stack runs. The pushed channels point at the reference
channel server that `ecom dev` starts (`ECOM_REFERENCE_CHANNEL_URL`, default http://127.0.0.1:8005).
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from ecom_cli.seeding import SeedContext, Seeder

REFERENCE_CHANNEL_URL_VAR = "ECOM_REFERENCE_CHANNEL_URL"
REFERENCE_SECRETS_FILE_VAR = "REFERENCE_CHANNEL_SECRETS_FILE"
DEFAULT_REFERENCE_CHANNEL_URL = "http://127.0.0.1:8005"

CHANNELS: list[dict[str, Any]] = [
    {
        "code": "web",
        "name": "Web store",
        "kind": "webhook",
        "locale": "fr-FR",
        "location_codes": ["wh_main"],
        "completeness_threshold": 1.0,
        "drift_policy": "heal",
    },
    {
        "code": "store_paris",
        "name": "Paris store",
        "kind": "pos",
        "locale": "fr-FR",
        "location_codes": ["store_paris"],
        "safety_buffer": 1,
        "completeness_threshold": 0.5,
        "drift_policy": "heal",
    },
    {
        "code": "store_berlin",
        "name": "Berlin store",
        "kind": "pos",
        "locale": "de-DE",
        "location_codes": ["store_berlin"],
        "safety_buffer": 1,
        "completeness_threshold": 0.5,
        "drift_policy": "heal",
    },
    {
        "code": "marketplace",
        "name": "Marketplace",
        "kind": "webhook",
        "locale": "fr-FR",
        "price_adjustment_percent": Decimal("8"),
        "location_codes": ["wh_main"],
        "safety_buffer": 2,
        "completeness_threshold": 1.0,
        "drift_policy": "report",
    },
    {
        "code": "google",
        "name": "Google Shopping feed",
        "kind": "feed",
        "locale": "fr-FR",
        "completeness_threshold": 0.8,
        "drift_policy": "report",
    },
]


def reference_channel_url() -> str:
    return os.environ.get(REFERENCE_CHANNEL_URL_VAR, DEFAULT_REFERENCE_CHANNEL_URL).rstrip("/")


def _write_secrets(path: Path, secrets: dict[str, str]) -> None:
    """A development demo only: the reference channel server reads the secrets it verifies from here."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(secrets, file, indent=2)


async def is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from servicekit.db import Database
    from sync_service.channels.models import Channel

    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(Channel))
        return not count
    except (OperationalError, ProgrammingError):
        return True
    finally:
        await database.dispose()


async def seed(context: SeedContext) -> str:
    from servicekit.db import Database
    from sync_service.channels import service
    from sync_service.channels.schemas import ChannelCreate
    from sync_service.config import Settings

    settings = Settings(database_url=context.database_url)
    base = reference_channel_url()
    task = context.progress.add_task("channels", total=len(CHANNELS))
    database = Database(context.database_url)
    secrets: dict[str, str] = {}
    try:
        async with database.session() as session:
            for channel in CHANNELS:
                pushed = channel["kind"] != "feed"
                endpoint = f"{base}/channels/{channel['code']}/listings" if pushed else None
                body = ChannelCreate.model_validate({"currency": "EUR", **channel, "endpoint": endpoint})
                registered, secret = await service.register_channel(
                    session, body=body, secrets_key=settings.secrets_key.get_secret_value()
                )
                if pushed:
                    secrets[registered.code] = secret
                context.progress.advance(task)
    finally:
        await database.dispose()
    secrets_file = os.environ.get(REFERENCE_SECRETS_FILE_VAR)
    if secrets_file:
        await asyncio.to_thread(_write_secrets, Path(secrets_file), secrets)
    return f"{len(CHANNELS)} channels (web store, 2 stores, marketplace, Google feed) pushing to {base}"


SEEDER = Seeder(name="channels", service="sync", is_empty=is_empty, seed=seed, order=15)
