"""sync-service answers the platform's service contract: probes, tokens, problem+json, metrics."""

import httpx
import pytest
from sync_support import channel_body

from servicekit.testing import ServiceContract, TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


class TestServiceContract(ServiceContract):
    async def existing_ids(self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> dict[str, str]:
        response = await client.post(
            "/v1/channels", json=channel_body(), headers=token_issuer.auth_header("sync:admin")
        )
        assert response.status_code == 201, response.text
        return {"channel_id": response.json()["id"]}
