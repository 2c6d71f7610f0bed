"""The reference channel server: a small sales channel that speaks sync-service's push protocol.

It verifies each push's Standard Webhooks signature (401 when it does not hold), stores the listings it
receives in memory, and answers with the state it now holds for each SKU (that answer becomes the
listing's acknowledged state). `GET /channels/{code}/listings` exposes what it holds, for drift checks.
It can be told, per channel, to fail (answer 500), to slow down, to answer garbage, or to silently lose
updates (answer as if it stored them). Tests, `bench/` and `ecom dev` run it as a real HTTP server.

It lives in sync-service's package because it is the other side of sync-service's wire format
(`PushBody` / `PushAnswer`): the two change together.

Run: `uvicorn sync_service.reference_channel:app --port 8005`. Signing secrets: `PUT
/channels/{code}/secret`, or a JSON file `{"<code>": "whsec_…"}` named by
`REFERENCE_CHANNEL_SECRETS_FILE` (re-read when it changes; `ecom seed` writes it for the seeded
channels).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks import Webhook

SECRETS_FILE_VAR = "REFERENCE_CHANNEL_SECRETS_FILE"
MAX_BODY_BYTES = 20 * 1024 * 1024
RECEIVED_LOG_SIZE = 200_000


class PushBody(BaseModel):
    """What sync-service POSTs to a channel: the listings' desired states (a state with `published:
    false` asks the channel to take the SKU off sale)."""

    channel: str
    listings: list[dict[str, Any]]


class HeldState(BaseModel):
    sku: str
    state: dict[str, Any] | None = Field(description="The listing as the channel now holds it (null: none)")


class PushAnswer(BaseModel):
    listings: list[HeldState]


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail: bool = Field(default=False, description="Answer every push with 500")
    fail_next: int = Field(default=0, ge=0, le=1_000_000, description="Answer the next N pushes with 500")
    delay_seconds: float = Field(default=0.0, ge=0, le=600, description="Wait before answering")
    lose: bool = Field(default=False, description="Answer as if stored, but store nothing")
    garbage: bool = Field(default=False, description="Answer 200 with a body that is not JSON")


class SecretBody(BaseModel):
    secret: str = Field(min_length=10, max_length=200)


@dataclass
class ChannelState:
    listings: dict[str, dict[str, Any]] = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    received: int = 0
    rejected: int = 0
    failed: int = 0
    lost: int = 0
    log: deque[tuple[float, str, str | None]] = field(default_factory=lambda: deque(maxlen=RECEIVED_LOG_SIZE))
    """(wall-clock time, SKU, price) of every listing stored, newest last (bench/ measures with it)."""


class ReferenceChannel:
    """The server's state: per channel code, its listings, behaviour and counters."""

    def __init__(self, secrets_file: Path | None = None) -> None:
        self.channels: dict[str, ChannelState] = {}
        self.secrets: dict[str, str] = {}
        self.secrets_file = secrets_file
        self._secrets_mtime: float | None = None

    def channel(self, code: str) -> ChannelState:
        return self.channels.setdefault(code, ChannelState())

    def secret_of(self, code: str) -> str | None:
        if self.secrets_file is not None and self.secrets_file.exists():
            mtime = self.secrets_file.stat().st_mtime
            if mtime != self._secrets_mtime:
                try:
                    loaded = json.loads(self.secrets_file.read_text())
                except (OSError, ValueError):
                    loaded = {}
                if isinstance(loaded, dict):
                    self.secrets.update({str(k): str(v) for k, v in loaded.items()})
                self._secrets_mtime = mtime
        return self.secrets.get(code)


def create_reference_channel(secrets_file: Path | None = None) -> FastAPI:
    app = FastAPI(title="Reference channel", description=__doc__)
    server = ReferenceChannel(secrets_file)
    app.state.server = server

    @app.post("/channels/{code}/listings", response_model=PushAnswer)
    async def receive(code: str, request: Request) -> Response:
        """Receive a signed push; answer with the state now held for each SKU."""
        channel = server.channel(code)
        body = await request.body()
        secret = server.secret_of(code)
        if secret is None or len(body) > MAX_BODY_BYTES:
            channel.rejected += 1
            raise HTTPException(401, "unknown channel or body too large")
        try:
            Webhook(secret).verify(body, dict(request.headers), json_parse=False)
            push = PushBody.model_validate_json(body)
        except Exception:
            channel.rejected += 1
            raise HTTPException(401, "bad signature or body") from None
        behaviour = channel.behaviour
        if behaviour.delay_seconds:
            await asyncio.sleep(behaviour.delay_seconds)
        if behaviour.fail or behaviour.fail_next:
            behaviour.fail_next = max(0, behaviour.fail_next - 1)
            channel.failed += 1
            raise HTTPException(500, "told to fail")
        channel.received += 1
        answer: list[HeldState] = []
        for state in push.listings:
            sku = str(state.get("sku", ""))
            if behaviour.lose:
                channel.lost += 1
                answer.append(HeldState(sku=sku, state=state))
                continue
            channel.listings[sku] = state
            price = state.get("sale", {}).get("price") if state.get("sale") else state.get("price")
            channel.log.append((time.time(), sku, str(price) if price is not None else None))
            answer.append(HeldState(sku=sku, state=channel.listings[sku]))
        if behaviour.garbage:
            return Response("<html>not json", media_type="text/html")
        return Response(PushAnswer(listings=answer).model_dump_json(), media_type="application/json")

    @app.get("/channels/{code}/listings")
    async def held(code: str) -> dict[str, Any]:
        """Every listing the channel holds, by SKU (drift checks compare it with the desired state)."""
        return {"listings": server.channel(code).listings}

    @app.get("/channels/{code}/stats")
    async def stats(code: str) -> dict[str, Any]:
        channel = server.channel(code)
        return {
            "received": channel.received,
            "rejected": channel.rejected,
            "failed": channel.failed,
            "lost": channel.lost,
            "listings": len(channel.listings),
        }

    @app.get("/channels/{code}/received")
    async def received(code: str) -> dict[str, Any]:
        """The latest listings stored, oldest first: [wall-clock time, SKU, price shown]."""
        return {"received": list(server.channel(code).log)}

    @app.put("/channels/{code}/behaviour", response_model=Behaviour)
    async def set_behaviour(code: str, body: Behaviour) -> Behaviour:
        """Tell the channel to fail, slow down, answer garbage or lose updates (all off: behave)."""
        server.channel(code).behaviour = body
        return body

    @app.put("/channels/{code}/secret", status_code=204)
    async def set_secret(code: str, body: SecretBody) -> None:
        """The signing secret sync-service showed when the channel was registered."""
        server.secrets[code] = body.secret

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


_secrets_path = os.environ.get(SECRETS_FILE_VAR)
app = create_reference_channel(Path(_secrets_path) if _secrets_path else None)
