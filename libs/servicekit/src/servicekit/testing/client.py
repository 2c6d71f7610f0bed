"""Run an app's lifespan and talk to it with httpx over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from servicekit.auth import StaticKeys, TokenVerifier
from servicekit.testing.tokens import TestTokenIssuer


@asynccontextmanager
async def running_app(
    app: FastAPI,
    tokens: TestTokenIssuer | None = None,
    *,
    wait_for_kafka: bool = True,
    kafka_timeout: float = 30.0,
    signed_in: tuple[str, ...] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (lifespan included), trust `tokens`' key, and yield a client bound to it; with
    `signed_in` (scopes), every request of the client carries a token of `tokens` with those scopes."""
    if tokens is not None:
        app.state.token_verifier = TokenVerifier(
            StaticKeys(tokens.jwks), issuer=tokens.issuer, audience=tokens.audience
        )
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        if wait_for_kafka and runtime.settings.kafka_enabled:
            await asyncio.wait_for(runtime.kafka_ready.wait(), kafka_timeout)
            for consumer in runtime.consumers:
                await asyncio.wait_for(consumer.started.wait(), kafka_timeout)
        transport = httpx.ASGITransport(app=app)
        headers = tokens.auth_header(*signed_in) if tokens is not None and signed_in is not None else None
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client
