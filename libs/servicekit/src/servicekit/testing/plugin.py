"""pytest plugin (auto-loaded): an embedded broker, test tokens, fresh databases, a running service.

Fixtures: `kafka_bootstrap` (session), `token_issuer` (session), `fresh_database_url` (module,
empty), `database_url` (module, migrated with the `alembic_ini` fixture), and `client` (an httpx
client of the running app). A service's conftest defines only `service` (a `ServiceUnderTest`);
`alembic_ini` defaults to the service's. Set TEST_DATABASE_URL to run on PostgreSQL,
TEST_KAFKA_BOOTSTRAP_SERVERS to use a running broker.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from servicekit.broker import EmbeddedBroker
from servicekit.settings import ServiceSettings
from servicekit.testing.client import running_app
from servicekit.testing.databases import MigratedTemplates, fresh_database
from servicekit.testing.tokens import TestTokenIssuer

# The embedded broker holds a consumer-group join for about half the session timeout, and at least 1 s
# (measured: 3000 ms -> 2.0 s, 2000 -> 1.0 s, 1000 -> 1.0 s). A group joined again right after its
# members left waits longer unless the timeout is this short (3000 ms: 7.1 s, 2000: 4.1 s, 1000: 1.0 s).
# Heartbeats go every 250 ms (a quarter of it).
TEST_SESSION_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class ServiceUnderTest:
    """How to build one service for its tests."""

    create_app: Callable[[Any], FastAPI]
    settings_class: type[ServiceSettings]
    alembic_ini: Path


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a broker for the whole test session."""
    external = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    with log_path.open("wb") as log, EmbeddedBroker(log=log) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def token_issuer() -> TestTokenIssuer:
    return TestTokenIssuer()


@pytest.fixture(scope="module")
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    label = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    with fresh_database(tmp_path_factory.mktemp("db"), label) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    """One database per service migrated by its migrations in this session, copied for each module."""
    templates = MigratedTemplates(tmp_path_factory.mktemp("templates"))
    yield templates
    templates.close()


@pytest.fixture(scope="module")
def database_url(
    fresh_database_url: str, request: pytest.FixtureRequest, migrated_templates: MigratedTemplates
) -> str:
    """A fresh database migrated by the service's own migrations (its conftest provides `alembic_ini`):
    a copy of the session's database migrated by them."""
    alembic_ini: Path = request.getfixturevalue("alembic_ini")
    migrated_templates.migrate(alembic_ini, fresh_database_url)
    return fresh_database_url


@pytest.fixture(scope="module")
def alembic_ini(request: pytest.FixtureRequest) -> Path:
    service: ServiceUnderTest = request.getfixturevalue("service")
    return service.alembic_ini


@pytest.fixture
async def client(
    request: pytest.FixtureRequest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the service, running (lifespan, broker, relay, consumers) on a fresh database."""
    service: ServiceUnderTest = request.getfixturevalue("service")
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
    )
    async with running_app(service.create_app(settings), token_issuer) as http:
        yield http
