import pytest

from analytics_service.config import ALEMBIC_INI, Settings
from analytics_service.main import create_app
from servicekit.testing import ServiceUnderTest


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)
