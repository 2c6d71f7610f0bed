"""customer-service answers the platform's service contract: probes, tokens, problem+json, metrics."""

import httpx
from customer_helpers import create_customer

from servicekit.testing import ServiceContract, TestTokenIssuer


class TestServiceContract(ServiceContract):
    async def existing_ids(self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> dict[str, str]:
        customer = await create_customer(client, token_issuer)
        return {"customer_id": customer["id"]}
