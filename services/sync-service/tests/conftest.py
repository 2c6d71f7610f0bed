from collections.abc import AsyncIterator

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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """The running service without consumers, shared by a module's tests (which therefore run in the
    module's event loop: `pytestmark = pytest.mark.asyncio(loop_scope="module")`)."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=False,
        log_json=False,
    )
    app = service.create_app(settings)
    async with running_app(app, token_issuer) as http:
        yield Running(
            client=http, database=app.state.runtime.database, tokens=token_issuer, settings=settings
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(running: Running) -> httpx.AsyncClient:
    return running.client
