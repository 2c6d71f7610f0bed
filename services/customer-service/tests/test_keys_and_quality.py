"""Master key rotation, production key checks, and the data quality summary."""

import base64
import os

import httpx
import pytest
from customer_helpers import create_customer, new_email, new_phone
from fastapi import FastAPI
from pydantic import ValidationError

from customer_service.config import DEV_MASTER_KEYS, Settings
from customer_service.main import create_app
from servicekit.testing import TestTokenIssuer, running_app


def _new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


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
    new_key = _new_key("k2")

    async with running_app(
        _app_with_keys(database_url, f"{new_key},{DEV_MASTER_KEYS}"), token_issuer
    ) as rotated:
        response = await rotated.post("/v1/admin/keys/rewrap", headers=token_issuer.auth_header("admin"))
    async with running_app(_app_with_keys(database_url, new_key), token_issuer) as only_new:
        read = await only_new.get(f"/v1/customers/{created['id']}", headers=token_issuer.auth_header("admin"))

    assert response.json()["rewrapped"] >= 1
    assert set(response.json()["data_keys_by_kid"]) == {"k2"}
    assert read.json()["emails"][0]["address"] == email


async def test_rewrap_needs_admin(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post("/v1/admin/keys/rewrap", headers=token_issuer.auth_header("customers:write"))

    assert response.status_code == 403


@pytest.mark.parametrize("field", ["master_keys", "blind_index_key"])
def test_production_refuses_development_keys(field: str) -> None:
    good = {"master_keys": _new_key("prod"), "blind_index_key": "a-real-secret-from-the-vault"}
    del good[field]

    with pytest.raises(ValidationError, match=field):
        Settings(environment="production", **good)


async def test_quality_summary_counts_criteria(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    await create_customer(
        client, token_issuer, emails=[{"address": new_email()}], phones=[{"number": new_phone()}]
    )
    headers = token_issuer.auth_header("customers:read")

    summary = (await client.get("/v1/quality/summary", headers=headers)).json()

    assert summary["customers"] >= 1
    assert summary["criteria"]["valid_email"] >= 1
    assert sum(summary["distribution"].values()) == summary["customers"]
    assert 0 < summary["average_score"] <= 1
