from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from gateway_harness import RunningGateway
from upstream_app import create_upstream

from gateway.config import ALEMBIC_INI, Settings
from gateway.main import create_app
from gateway.testing import serving
from servicekit.testing import ServiceUnderTest


@pytest.fixture(scope="module")
def service() -> ServiceUnderTest:
    return ServiceUnderTest(create_app=create_app, settings_class=Settings, alembic_ini=ALEMBIC_INI)


@pytest.fixture
def gateway_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_enabled": False,
            "log_json": False,
            "environment": "test",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def start_gateway(gateway_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start_gateway(**settings) as gw:` a gateway with those settings."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[RunningGateway]:
        app = create_app(gateway_settings(**overrides))
        # Each gateway sees its own client IP, so per-IP lockouts and limits of one test stay in it.
        ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        ):
            yield RunningGateway(app, http)

    return start


@pytest.fixture
async def gw(start_gateway: Callable[..., Any]) -> AsyncIterator[RunningGateway]:
    async with start_gateway() as running:
        yield running


@pytest.fixture
async def routed(start_gateway: Callable[..., Any]) -> AsyncIterator[RunningGateway]:
    """A gateway routing customers and analytics to an echoing upstream, in development (cookies
    without Secure, so the http:// test client sends them back)."""
    async with (
        serving(create_upstream()) as url,
        start_gateway(customer_url=url, analytics_url=url, environment="development") as gw,
    ):
        yield gw
