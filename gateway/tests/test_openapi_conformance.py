"""Every operation of the gateway's own API answers what its OpenAPI document says (schemathesis)."""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from gateway.config import Settings
from gateway.main import create_app
from gateway.users import create_user
from servicekit.db import Database
from servicekit.testing.conformance import ConformanceTarget, check_case, conformance_schema, serve_in_thread

ADMIN_PASSWORD = "conformance horse battery staple"

# schemathesis' own strategies draw from `random`, which Hypothesis warns about on every example.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

schema = conformance_schema(create_app(Settings()).openapi())


async def _add_admin(database_url: str, email: str) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            await create_user(session, email=email, password=ADMIN_PASSWORD, roles=["admin"])
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def target(database_url: str) -> Iterator[ConformanceTarget]:
    email = f"{uuid.uuid4().hex[:10]}@example.test"
    asyncio.run(_add_admin(database_url, email))
    settings = Settings(
        database_url=database_url,
        kafka_enabled=False,
        log_json=False,
        environment="test",
        # Generated requests all come from 127.0.0.1: limits and lockouts would answer 429 to most.
        auth_rate_limit_burst=100_000,
        auth_rate_limit_rate_per_second=10_000.0,
        rate_limit_burst=100_000,
        rate_limit_rate_per_second=10_000.0,
        lockout_threshold=100_000,
        lockout_ip_threshold=100_000,
    )
    with serve_in_thread(create_app(settings)) as base_url:
        token = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "password", "username": email, "password": ADMIN_PASSWORD},
        )
        assert token.status_code == 200, token.text
        yield ConformanceTarget(base_url, {"Authorization": f"Bearer {token.json()['access_token']}"})


@schema.parametrize()
def test_operation_conforms_to_openapi(case: schemathesis.Case, target: ConformanceTarget) -> None:
    check_case(case, target)
