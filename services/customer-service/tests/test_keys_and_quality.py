"""Key management's permissions, production key checks, and the data quality summary (rotation itself
is in test_key_rotation.py, each test on a database of its own)."""

import httpx
import pytest
from customer_helpers import create_customer, new_email, new_master_key, new_phone
from pydantic import ValidationError

from customer_service.config import Settings
from servicekit.testing import TestTokenIssuer


async def test_rewrap_needs_admin(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    response = await client.post("/v1/admin/keys/rewrap", headers=token_issuer.auth_header("customers:write"))

    assert response.status_code == 403


@pytest.mark.parametrize("field", ["master_keys", "blind_index_key"])
def test_production_refuses_development_keys(field: str) -> None:
    good = {"master_keys": new_master_key("prod"), "blind_index_key": "a-real-secret-from-the-vault"}
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
