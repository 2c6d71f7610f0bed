"""A bounded, seeded fuzz of every operation with hostile values: no answer may be a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from servicekit.testing import TestTokenIssuer
from servicekit.testing.hostile import hostile_requests

SCOPES = ("events:write", "analytics:read", "analytics:write")


async def test_no_hostile_value_gets_a_5xx(client: httpx.AsyncClient, token_issuer: TestTokenIssuer) -> None:
    headers = token_issuer.auth_header(*SCOPES)
    now = datetime.now(UTC).isoformat()
    event = {
        "message_id": "m-1",
        "event": "Page Viewed",
        "timestamp": now,
        "session_id": "s",
        "anonymous_id": "a",
    }
    bases: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("POST", "/v1/track"): ("/v1/track", {"batch": [event]}),
        ("POST", "/v1/spend"): (
            "/v1/spend",
            {"entries": [{"day": "2026-01-01", "channel": "google", "amount": "1.00", "currency": "EUR"}]},
        ),
        ("POST", "/v1/expenses"): (
            "/v1/expenses",
            {"day": "2026-01-01", "category": "rent", "amount": "1.00", "currency": "EUR"},
        ),
        ("POST", "/v1/segments"): ("/v1/segments", {"name": "fuzz", "rules": {"frequency_min": 1}}),
    }
    document = (await client.get("/openapi.json")).json()
    failures = []
    count = 0
    for request in hostile_requests(document, bases=bases):
        count += 1
        response = await client.request(
            request.method,
            request.path,
            params=request.params,
            content=request.content,
            headers={**headers, **request.headers},
        )
        if response.status_code >= 500:
            failures.append((request.method, request.path, request.params, (request.content or b"")[:200]))
    assert count > 100
    assert failures == []
