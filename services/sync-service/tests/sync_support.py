"""Helpers shared by sync-service tests: unique data, API shortcuts, reading events off topics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from servicekit.db import Database
from servicekit.testing import TestTokenIssuer
from servicekit.testing.events import eventually, produce, wait_for_events
from sync_service.config import Settings

__all__ = ["eventually", "produce", "wait_for_events"]


@dataclass
class Running:
    client: httpx.AsyncClient
    database: Database
    tokens: TestTokenIssuer
    settings: Settings

    @property
    def admin(self) -> dict[str, str]:
        return self.tokens.auth_header("sync:admin", "sync:read")

    @property
    def reader(self) -> dict[str, str]:
        return self.tokens.auth_header("sync:read")


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def channel_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique("shop-"),
        "name": "Web store",
        "kind": "webhook",
        "endpoint": "http://127.0.0.1:9/hooks",
        "currency": "EUR",
        "locale": "fr-FR",
    }
    body.update(fields)
    return body


async def register(app: Running, **fields: Any) -> dict[str, Any]:
    response = await app.client.post("/v1/channels", json=channel_body(**fields), headers=app.admin)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
