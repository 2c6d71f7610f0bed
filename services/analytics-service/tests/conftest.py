from collections.abc import AsyncIterator

import pytest

from analytics_service.config import ALEMBIC_INI, Settings
from analytics_service.main import create_app
from servicekit.db import Database
from servicekit.testing import ServiceUnderTest


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The module's migrated database, for tests that deliver events to the handlers directly."""
    db = Database(database_url)
    yield db
    await db.dispose()
