"""product-service answers the platform's service contract: probes, tokens, problem+json, metrics."""

import pytest

from servicekit.testing import ServiceContract

pytestmark = pytest.mark.asyncio(loop_scope="module")


class TestServiceContract(ServiceContract):
    pass
