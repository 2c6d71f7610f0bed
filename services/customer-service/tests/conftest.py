from collections.abc import AsyncIterator

import httpx
import pytest

from customer_service.config import ALEMBIC_INI, Settings
from customer_service.main import create_app
from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


def _settings(database_url: str, kafka_bootstrap: str, *, consumers: bool) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=consumers,
        log_json=False,
    )


@pytest.fixture
async def client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on a fresh database with the broker and the relay (its events are published), without
    its consumers: joining and leaving their group costs about 2 s per test on the embedded broker."""
    app = create_app(_settings(database_url, kafka_bootstrap, consumers=False))
    async with running_app(app, token_issuer) as http:
        yield http


@pytest.fixture
async def consuming_client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with its consumers too, for tests of what it does with other services' events."""
    app = create_app(_settings(database_url, kafka_bootstrap, consumers=True))
    async with running_app(app, token_issuer) as http:
        yield http
