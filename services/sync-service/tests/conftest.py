import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sync_support import Running

from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import ALEMBIC_INI, Settings
from sync_service.main import create_app


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


@asynccontextmanager
async def running_service(
    database_url: str,
    kafka_bootstrap: str,
    token_issuer: TestTokenIssuer,
    *,
    consumers: bool,
    **overrides: Any,
) -> AsyncIterator[Running]:
    """sync-service running in-process; with `consumers`, once they hold their partitions."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=consumers,
        log_json=False,
        **overrides,
    )
    app = create_app(settings)
    async with running_app(app, token_issuer) as http:
        for consumer in app.state.runtime.consumers:
            await asyncio.wait_for(consumer.assigned.wait(), 30)
        database = app.state.runtime.database
        yield Running(client=http, database=database, tokens=token_issuer, settings=settings, app=app)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """The running service without consumers, shared by a module's tests (which therefore run in the
    module's event loop: `pytestmark = pytest.mark.asyncio(loop_scope="module")`)."""
    async with running_service(database_url, kafka_bootstrap, token_issuer, consumers=False) as app:
        yield app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """The running service with its consumers, shared by a module's tests."""
    async with running_service(database_url, kafka_bootstrap, token_issuer, consumers=True) as app:
        yield app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(running: Running) -> httpx.AsyncClient:
    return running.client
