from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from partner_support import Running

from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS
from sync_service.config import ALEMBIC_INI, Settings
from sync_service.main import create_app


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """The service with its consumers (the orders projection), shared by a module's tests, which run in
    the module's event loop (`pytestmark = pytest.mark.asyncio(loop_scope="module")`): a consumer group
    join costs about 2 s on the embedded broker. The late sweep is called by the tests themselves."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        late_sweep_enabled=False,
        log_json=False,
    )
    app = create_app(settings)
    async with running_app(app, token_issuer) as http:
        yield Running(
            client=http, database=app.state.runtime.database, tokens=token_issuer, bootstrap=kafka_bootstrap
        )


@pytest.fixture
async def client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with the broker and the relay but without its consumers (the service contract's
    tests): joining and leaving a consumer group costs about 2 s per test on the embedded broker."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=False,
        late_sweep_enabled=False,
        log_json=False,
    )
    async with running_app(create_app(settings), token_issuer) as http:
        yield http
