"""`ecom seed` gives sync-service its own gateway client (role `sync`), once, and `ecom dev` passes it on."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from ecom_cli.commands.seed import database_url_for, run_seeders
from ecom_cli.seeders.sync_client import SEEDER
from ecom_cli.stack import SYNC_CLIENT_FILE_VAR, service_env, service_named, sync_client_path
from gateway.clients import authenticate_client
from gateway.config import ALEMBIC_INI
from gateway.models import ApiClient
from gateway.roles import ROLE_SCOPES, Role
from servicekit.db import Database
from servicekit.migrations import upgrade


async def _clients(url: str, client_id: str, secret: str) -> tuple[list[ApiClient], ApiClient | None]:
    database = Database(url)
    try:
        async with database.session() as session:
            clients = list((await session.execute(select(ApiClient))).scalars().all())
            return clients, await authenticate_client(session, client_id, secret)
    finally:
        await database.dispose()


def test_the_seed_creates_sync_service_s_client_once_and_dev_passes_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SYNC_CLIENT_FILE_VAR, str(sync_client_path(tmp_path)))
    url = database_url_for(SEEDER, tmp_path)
    upgrade(ALEMBIC_INI, url)
    console = Console(file=io.StringIO(), width=200)

    first = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))
    second = asyncio.run(run_seeders([SEEDER], var_dir=tmp_path, scale=1.0, if_empty=True, console=console))

    assert (first, second) == (1, 0)
    path = sync_client_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credential = json.loads(path.read_text())
    clients, authenticated = asyncio.run(_clients(url, credential["client_id"], credential["client_secret"]))
    assert [(c.role, c.status) for c in clients] == [("sync", "active")]
    assert authenticated is not None
    assert ROLE_SCOPES[Role.sync] == ("products:read",)

    env = service_env(
        service_named("sync"), var_dir=tmp_path, base_env={}, gateway_port=9100, ports={"product": 9102}
    )
    assert env["SYNC_PRODUCT_SERVICE_URL"] == "http://127.0.0.1:9102"
    assert env["SYNC_TOKEN_URL"] == "http://127.0.0.1:9100/oauth/token"
    assert (env["SYNC_CLIENT_ID"], env["SYNC_CLIENT_SECRET"]) == (
        credential["client_id"],
        credential["client_secret"],
    )


def test_without_a_seeded_client_sync_service_gets_no_credential(tmp_path: Path) -> None:
    env = service_env(service_named("sync"), var_dir=tmp_path, base_env={})
    assert "SYNC_CLIENT_ID" not in env
    assert "SYNC_CLIENT_SECRET" not in env
    assert "SYNC_PRODUCT_SERVICE_URL" not in service_env(
        service_named("analytics"), var_dir=tmp_path, base_env={}
    )
