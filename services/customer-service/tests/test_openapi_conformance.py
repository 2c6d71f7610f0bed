"""Every operation of customer-service answers what its OpenAPI document says (schemathesis)."""

from collections.abc import Iterator

import pytest
import schemathesis

from customer_service.config import Settings
from customer_service.main import create_app
from servicekit.testing import ServiceUnderTest, TestTokenIssuer
from servicekit.testing.conformance import (
    ConformanceTarget,
    check_case,
    conformance_schema,
    conformance_target,
)

# schemathesis' own strategies draw from `random`, which Hypothesis warns about on every example.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

schema = conformance_schema(create_app(Settings()).openapi())


@pytest.fixture(scope="module")
def target(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, token_issuer: TestTokenIssuer
) -> Iterator[ConformanceTarget]:
    with conformance_target(service, database_url, kafka_bootstrap, token_issuer) as running:
        yield running


@schema.parametrize()
def test_operation_conforms_to_openapi(case: schemathesis.Case, target: ConformanceTarget) -> None:
    check_case(case, target)
