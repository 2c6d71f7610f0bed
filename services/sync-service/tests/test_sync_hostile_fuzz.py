"""A bounded, seeded fuzz of every sync-service operation with hostile values: no answer may be a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from sync_support import Running, channel_body, register, unique

from servicekit.testing.hostile import hostile_requests

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_no_hostile_value_gets_a_5xx(running: Running) -> None:
    channel = await register(running)
    headers = running.admin
    body = channel_body()
    bases: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        ("POST", "/v1/channels"): ("/v1/channels", body),
        ("PATCH", "/v1/channels/{channel_id}"): (f"/v1/channels/{channel['id']}", {"name": unique("n-")}),
    }
    document = (await running.client.get("/openapi.json")).json()
    failures = []
    count = 0
    for request in hostile_requests(document, bases=bases):
        count += 1
        extra = {"If-Match": '"1"'} if request.method == "PATCH" else {}
        response = await running.client.request(
            request.method,
            request.path,
            params=request.params,
            content=request.content,
            headers={**headers, **request.headers, **extra},
        )
        if response.status_code >= 500:
            failures.append((request.method, request.path, request.params, (request.content or b"")[:200]))

    assert count > 60
    assert failures == []
