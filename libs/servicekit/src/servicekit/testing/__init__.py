"""Test helpers: tokens, fresh databases, running an app in-process."""

from servicekit.testing.client import running_app
from servicekit.testing.contract import ServiceContract
from servicekit.testing.databases import fresh_database, using_postgres
from servicekit.testing.plugin import ServiceUnderTest
from servicekit.testing.tokens import TestTokenIssuer

__all__ = [
    "ServiceContract",
    "ServiceUnderTest",
    "TestTokenIssuer",
    "fresh_database",
    "running_app",
    "using_postgres",
]
