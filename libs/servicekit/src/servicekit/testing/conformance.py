"""Check a running service against its own OpenAPI document with schemathesis.

`serve_in_thread` runs an app under a real uvicorn server on a free loopback port (lifespan, broker,
relay and consumers included) in a thread of its own, so schemathesis' synchronous client can call it;
`conformance_schema` loads the app's OpenAPI document with the platform's bounded settings; a service's
test module parametrizes over every operation with it and calls `check_case`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import schemathesis
import uvicorn
from fastapi import FastAPI
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from servicekit.auth import StaticKeys, TokenVerifier
from servicekit.testing.plugin import TEST_SESSION_TIMEOUT_MS, ServiceUnderTest
from servicekit.testing.tokens import TestTokenIssuer

CONFORMANCE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Every scope of the platform (the gateway's roles table), so no operation answers 403 for want of one.
ALL_SCOPES = (
    "customers:read",
    "customers:write",
    "customers:pii",
    "orders:write",
    "products:read",
    "products:write",
    "inventory:write",
    "sync:read",
    "sync:admin",
    "analytics:read",
    "events:write",
    "privacy:admin",
    "admin",
)

# Examples per operation and phase: enough to reach every documented answer of a route (valid and
# invalid bodies, unknown ids, stale versions) while a service's whole run stays around a minute.
MAX_EXAMPLES = 6
START_TIMEOUT_S = 60.0


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_context: Any, value: Any) -> bytes:
    """Bodies of upload routes that take NDJSON (documented as a string): sent as they are."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@contextmanager
def serve_in_thread(
    app: FastAPI, tokens: TestTokenIssuer | None = None, *, wait_for_kafka: bool = True
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 on a free port until the block ends; yields its base URL."""
    if tokens is not None:
        app.state.token_verifier = TokenVerifier(
            StaticKeys(tokens.jwks), issuer=tokens.issuer, audience=tokens.audience
        )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="conformance-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not _ready(app, server, wait_for_kafka):
            if failure or not thread.is_alive():
                raise RuntimeError("the service did not start") from (failure[0] if failure else None)
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not become ready")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _ready(app: FastAPI, server: uvicorn.Server, wait_for_kafka: bool) -> bool:
    if not server.started:
        return False
    runtime = getattr(app.state, "runtime", None)
    if runtime is None or not wait_for_kafka or not runtime.settings.kafka_enabled:
        return True
    return bool(runtime.kafka_ready.is_set()) and all(c.started.is_set() for c in runtime.consumers)


def conformance_schema(openapi: dict[str, Any], *, max_examples: int = MAX_EXAMPLES, seed: int = 8) -> Any:
    """An OpenAPI document as a schemathesis schema with bounded, seeded generation of valid and
    invalid requests (a fixed seed: a CI failure reproduces locally). Load it at import time from
    `create_app(...).openapi()`; the running server's URL is given to `check_case`."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "generation": {"mode": "all", "max-examples": max_examples, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "request-timeout": 30,
        }
    )
    return schemathesis.openapi.from_dict(openapi, config=config)


@dataclass(frozen=True)
class ConformanceTarget:
    """A running service and the headers every request carries (a token with every scope)."""

    base_url: str
    headers: dict[str, str]


@contextmanager
def conformance_target(
    service: ServiceUnderTest, database_url: str, kafka_bootstrap: str, tokens: TestTokenIssuer
) -> Iterator[ConformanceTarget]:
    """The service running on `database_url` and the broker, called with a token holding every scope."""
    settings = service.settings_class(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        log_json=False,
    )
    with serve_in_thread(service.create_app(settings), tokens) as base_url:
        yield ConformanceTarget(base_url, tokens.auth_header(*ALL_SCOPES))


def check_case(case: Case[Any], target: ConformanceTarget) -> None:
    """Send the case to the running service and run the response-conformance checks on the answer."""
    case.call_and_validate(base_url=target.base_url, headers=target.headers, checks=CONFORMANCE_CHECKS)
