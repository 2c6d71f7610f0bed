from collections.abc import AsyncIterator

import httpx
import pytest

from analytics_service.config import ALEMBIC_INI, Settings
from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


def settings_for(
    database_url: str, kafka_bootstrap: str, *, consumers: bool, **overrides: object
) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        kafka_consumers_enabled=consumers,
        log_json=False,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with the broker and the relay (its events are published) but without its consumers:
    joining their groups costs about 2 s each on the embedded broker. Tests of the read APIs deliver
    events to the handlers directly (`database`)."""
    app = create_app(settings_for(database_url, kafka_bootstrap, consumers=False))
    async with running_app(app, token_issuer) as http:
        yield http


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The module's migrated database, for tests that deliver events to the handlers directly."""
    db = Database(database_url)
    yield db
    await db.dispose()
