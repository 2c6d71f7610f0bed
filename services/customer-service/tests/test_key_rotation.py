"""Master key rotation. Each test has a database of its own: a rotation rewraps every data key in it,
and tests elsewhere run with the development keys only (a customer they create is compared with the
stored ones, whose PII the service must then be able to open)."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from customer_helpers import create_customer, new_email, new_master_key
from fastapi import FastAPI

from customer_service.config import DEV_MASTER_KEYS, Settings
from customer_service.main import create_app
from servicekit.testing import TestTokenIssuer, fresh_database, running_app
from servicekit.testing.databases import MigratedTemplates


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_templates: MigratedTemplates, alembic_ini: Path
) -> Iterator[str]:
    label = "rotation_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    with fresh_database(tmp_path, label) as url:
        migrated_templates.migrate(alembic_ini, url)
        yield url


def _app_with_keys(database_url: str, master_keys: str) -> FastAPI:
    settings = Settings(
        database_url=database_url, master_keys=master_keys, kafka_enabled=False, log_json=False
    )
    return create_app(settings)


async def test_rotated_master_key_rewraps_every_data_key(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    email = new_email()
    created = await create_customer(client, token_issuer, emails=[{"address": email}])
    new_key = new_master_key("k2")

    async with running_app(
        _app_with_keys(database_url, f"{new_key},{DEV_MASTER_KEYS}"), token_issuer
    ) as rotated:
        response = await rotated.post("/v1/admin/keys/rewrap", headers=token_issuer.auth_header("admin"))
    async with running_app(_app_with_keys(database_url, new_key), token_issuer) as only_new:
        read = await only_new.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header("admin"))

    assert response.json()["rewrapped"] >= 1
    assert set(response.json()["data_keys_by_kid"]) == {"k2"}
    assert read.json()["emails"][0]["address"] == email


async def test_data_under_a_master_key_that_was_removed_gets_a_problem_naming_the_key(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, database_url: str
) -> None:
    created = await create_customer(client, token_issuer, emails=[{"address": new_email()}])
    async with running_app(
        _app_with_keys(database_url, f"{new_master_key('k3')},{DEV_MASTER_KEYS}"), token_issuer
    ) as rotated:
        await rotated.post("/v1/admin/keys/rewrap", headers=token_issuer.auth_header("admin"))

    read = await client.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header("admin"))

    assert read.status_code == 503
    assert read.headers["content-type"] == "application/problem+json"
    assert "'k3'" in read.json()["detail"]
