"""product-service answers the platform's service contract: probes, tokens, problem+json, metrics."""

import httpx
import pytest
from product_support import create_category, create_family, create_product

from servicekit.testing import ServiceContract, TestTokenIssuer

pytestmark = pytest.mark.asyncio(loop_scope="module")


class TestServiceContract(ServiceContract):
    async def existing_ids(self, client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> dict[str, str]:
        family = await create_family(client, token_issuer, [])
        category = await create_category(client, token_issuer, family_id=family["id"])
        product = await create_product(client, token_issuer)
        return {
            "family_id": family["id"],
            "category_id": category["id"],
            "product_id": product["id"],
            "sku": product["variants"][0]["sku"],
        }
