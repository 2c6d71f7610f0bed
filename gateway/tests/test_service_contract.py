"""gateway answers the platform's service contract: probes, tokens, problem+json, metrics."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.auth import is_public
from gateway.config import Settings
from gateway.main import create_app
from gateway.runtime import Gateway
from gateway.testing import TokenForge
from gateway.users import create_user
from servicekit.testing import ServiceContract, TestTokenIssuer
from servicekit.testing.client import running_app
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS


@pytest.fixture
async def client(
    database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The running gateway; refusals are not rate-limited here, as the walk below makes hundreds (the
    limit has its own test in test_rate_limits.py)."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
        refused_rate_limit_burst=100_000,
    )
    async with running_app(create_app(settings), token_issuer) as http:
        yield http


class TestServiceContract(ServiceContract):
    async def auth_headers(
        self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer, *scopes: str
    ) -> dict[str, str]:
        """The gateway trusts only its own keys and its own active users: a real user, a token it signed."""
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        gateway: Gateway = transport.app.state.gateway  # type: ignore[attr-defined]
        async with gateway.database.session() as session:
            user = await create_user(
                session, email=f"{uuid.uuid4().hex[:10]}@example.test", password="x" * 16, roles=["admin"]
            )
        forge = TokenForge(gateway)
        token = await forge.signed(forge.claims(subject=user.id, scopes=list(scopes)))
        return {"Authorization": f"Bearer {token}"}

    def is_public(self, path: str) -> bool:
        return is_public(path) and not path.startswith("/api/")
