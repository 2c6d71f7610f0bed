from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sync_support import Running, running_service

from servicekit.testing import ServiceUnderTest, TestTokenIssuer
from sync_service.config import ALEMBIC_INI, Settings
from sync_service.main import create_app


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


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
