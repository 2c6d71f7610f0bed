"""Blind-index key rotation: lookups keep working during the re-index, which runs in resumable calls."""

import os

import httpx
from customer_helpers import create_customer, new_email, new_phone
from fastapi import FastAPI

from customer_service.config import Settings
from customer_service.main import create_app
from servicekit.testing import TestTokenIssuer, running_app


def _app_with_blind_keys(database_url: str, blind_key: str, previous: str = "") -> FastAPI:
    settings = Settings(
        database_url=database_url,
        blind_index_key=blind_key,
        previous_blind_index_keys=previous,
        kafka_enabled=False,
        log_json=False,
    )
    return create_app(settings)


async def test_rotated_blind_index_key_reindexes_identifiers_and_lookups_keep_working(
    database_url: str, token_issuer: TestTokenIssuer
) -> None:
    old_key, new_key = f"old-{os.urandom(8).hex()}", f"new-{os.urandom(8).hex()}"
    email, phone = new_email(), new_phone()
    admin = token_issuer.auth_header("admin")
    async with running_app(_app_with_blind_keys(database_url, old_key), token_issuer) as before:
        created = await create_customer(
            before, token_issuer, emails=[{"address": email}], phones=[{"number": phone}]
        )

    async with running_app(_app_with_blind_keys(database_url, new_key, old_key), token_issuer) as rotating:
        during = await rotating.post("/v1/customers/identify", json={"email": email}, headers=admin)
        first = await rotating.post("/v1/admin/keys/reindex", params={"limit": 1}, headers=admin)
        rest = await rotating.post("/v1/admin/keys/reindex", headers=admin)
    async with running_app(_app_with_blind_keys(database_url, new_key), token_issuer) as after:
        identified = await after.post("/v1/customers/identify", json={"email": email}, headers=admin)
        found = await after.get("/v1/customers", params={"phone": phone}, headers=admin)
        status = await after.get("/v1/admin/keys", headers=admin)

    assert (during.status_code, during.json()["customer"]["id"]) == (200, created["id"])
    assert first.json()["reindexed"] == 1
    assert rest.json()["remaining"] == 0
    assert (identified.status_code, identified.json()["customer"]["id"]) == (200, created["id"])
    assert [c["id"] for c in found.json()["items"]] == [created["id"]]
    assert set(status.json()["customers_by_index_kid"]) == {status.json()["blind_index_kid"]}


async def test_reindex_needs_admin(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post(
        "/v1/admin/keys/reindex", headers=token_issuer.auth_header("customers:write")
    )

    assert response.status_code == 403
