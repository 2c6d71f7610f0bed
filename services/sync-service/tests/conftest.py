import pytest

from servicekit.testing import ServiceUnderTest
from sync_service.config import ALEMBIC_INI, Settings
from sync_service.main import create_app


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)
