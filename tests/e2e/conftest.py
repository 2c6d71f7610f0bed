"""Cross-service tests: the real gateway and a real service, each on its own 127.0.0.1 port.

The service verifies tokens against the gateway's JWKS over HTTP, exactly as in `ecom dev`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from e2e_stack import Stack

from customer_service.config import ALEMBIC_INI as CUSTOMER_ALEMBIC_INI
from customer_service.config import Settings as CustomerSettings
from customer_service.main import create_app as create_customer_app
from gateway.config import ALEMBIC_INI as GATEWAY_ALEMBIC_INI
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway_app
from gateway.testing import free_port, serving
from servicekit.migrations import upgrade
from servicekit.testing import fresh_database


@pytest.fixture(scope="module")
def gateway_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("gw"), "e2e_gateway") as url:
        upgrade(GATEWAY_ALEMBIC_INI, url)
        yield url


@pytest.fixture(scope="module")
def customer_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("customer"), "e2e_customer") as url:
        upgrade(CUSTOMER_ALEMBIC_INI, url)
        yield url


@pytest.fixture
async def stack(gateway_database: str, customer_database: str) -> AsyncIterator[Stack]:
    gateway_port, customer_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    customer_url = f"http://127.0.0.1:{customer_port}"
    gateway_app = create_gateway_app(
        GatewaySettings(
            database_url=gateway_database,
            kafka_enabled=False,
            log_json=False,
            jwt_issuer=gateway_url,
            customer_url=customer_url,
        )
    )
    customer_app = create_customer_app(
        CustomerSettings(
            database_url=customer_database,
            kafka_enabled=False,
            log_json=False,
            jwks_url=f"{gateway_url}/.well-known/jwks.json",
            jwt_issuer=gateway_url,
            revocations_url=f"{gateway_url}/.well-known/revocations.json",
            revocations_cache_seconds=0.2,
        )
    )
    async with (
        serving(gateway_app, port=gateway_port),
        serving(customer_app, port=customer_port),
        httpx.AsyncClient(timeout=10) as http,
    ):
        yield Stack(gateway_url, customer_url, gateway_app.state.gateway, http)
