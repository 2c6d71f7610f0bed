"""sync-service answers the platform's service contract: probes, tokens, problem+json, metrics."""

from servicekit.testing import ServiceContract


class TestServiceContract(ServiceContract):
    pass
