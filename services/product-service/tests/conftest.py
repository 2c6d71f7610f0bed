import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from inventory_support import Running
from product_support import TEST_CHANNELS, register_channels

from product_service.config import ALEMBIC_INI, Settings
from product_service.main import create_app
from servicekit.testing import ServiceUnderTest, TestTokenIssuer, running_app
from servicekit.testing.databases import MigratedTemplates
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


@pytest.fixture(scope="module")
def database_url(fresh_database_url: str, alembic_ini: Path, migrated_templates: MigratedTemplates) -> str:
    """A migrated database whose channel projection already knows the channel codes the tests use
    (sync-service's registry fills it through ecom.channels.v1 in a running install)."""
    migrated_templates.migrate(alembic_ini, fresh_database_url)
    asyncio.run(register_channels(fresh_database_url, TEST_CHANNELS))
    return fresh_database_url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The running service, shared by the tests of a module, which therefore run in the module's event
    loop (`pytestmark = pytest.mark.asyncio(loop_scope="module")`). Starting it per test costs about 2 s
    of consumer-group join and leave; tests keep their data apart with unique SKUs and ids."""
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
    )
    async with running_app(service.create_app(settings), token_issuer) as http:
        yield http


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[Running]:
    """Like `client`, plus the service's database, for tests that race requests against the event
    handlers and the expiry sweep, which they call directly."""
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
    )
    app = service.create_app(settings)
    async with running_app(app, token_issuer) as http:
        yield Running(client=http, database=app.state.runtime.database, tokens=token_issuer)
