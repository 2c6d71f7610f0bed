from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from servicekit.db import Database

APP_MIGRATIONS = Path(__file__).parent / "app_migrations" / "alembic.ini"


@pytest.fixture(scope="module")
def alembic_ini() -> Path:
    return APP_MIGRATIONS


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()
