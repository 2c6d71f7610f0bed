"""What partners send in: who sent it (a Standard Webhooks signature or a bearer token), and every
refused attempt counted in `sync_webhook_rejected_total{source,reason}`.

The app's AuthenticationGate calls `authenticate` before any route: a signed shipment webhook is
checked against its partner's secret there, so nothing about the order or the payload is looked at
for a sender that is not who it says. `RejectionCounter` (outermost middleware) counts each 4xx
answer of the partner routes once, with the reason the code that refused it recorded."""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import Caller
from servicekit.authgate import read_body, verify_bearer
from servicekit.db import Database
from servicekit.errors import ServiceError, Unauthorized, UnprocessableEntity
from sync_service.channels.secrets import unseal
from sync_service.logistics import service as partners

REJECTED = Counter(
    "sync_webhook_rejected_total",
    "Partner submissions refused (nothing applied), by source and reason",
    ["source", "reason"],
)

SHIPMENT_WEBHOOK_PATH = "/v1/shipments/webhook"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
PARTNER_QUERY = "partner"
SIGNED_SCOPES = frozenset({"shipments:write"})
REASON_KEY = "sync.rejection_reason"
DEFAULT_REASONS = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "malformed",
    422: "malformed",
}


def mark(scope: Scope, reason: str) -> None:
    """Record why this request is being refused (the counter's `reason`)."""
    scope[REASON_KEY] = reason


class Rejected(UnprocessableEntity):
    """A refused submission: 422 (or `status`) problem+json naming the field, counted with `reason`."""

    def __init__(self, reason: str, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(
            message, status=status, extra={"errors": [{"field": field, "message": message, "type": reason}]}
        )
        self.reason = reason


def source_of(path: str) -> str | None:
    """The counter's `source` for a partner route, None for any other path."""
    if path == SHIPMENT_WEBHOOK_PATH:
        return "shipments"
    if path.startswith("/v1/channels/") and path.endswith("/sales"):
        return "sales"
    return None


class RejectionCounter:
    """Pure-ASGI middleware: counts every 4xx answer of a partner route once."""

    def __init__(self, app: ASGIApp, *, source_of: Callable[[str], str | None] = source_of) -> None:
        self.app = app
        self.source_of = source_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self.source_of(scope["path"]) if scope["type"] == "http" else None
        if source is None:
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if 400 <= status < 500:
            reason = scope.get(REASON_KEY) or DEFAULT_REASONS.get(status, "other")
            REJECTED.labels(source, reason).inc()


def _refuse(request: Request, reason: str, detail: str) -> Unauthorized:
    mark(request.scope, reason)
    return Unauthorized(detail, headers={"WWW-Authenticate": 'Bearer realm="ecom", Webhook'})


async def authenticate(request: Request) -> Caller:
    """The gate's authenticator: a signed shipment webhook by its partner's secret, anything else (and a
    webhook sent with a bearer token) by the bearer token."""
    headers = request.headers
    if request.url.path == SHIPMENT_WEBHOOK_PATH and "authorization" not in headers:
        if not all(headers.get(name) for name in SIGNATURE_HEADERS):
            raise _refuse(
                request,
                "missing_signature",
                "Sign the webhook (webhook-id, webhook-timestamp and webhook-signature headers, Standard "
                "Webhooks) or send a Bearer token.",
            )
        return await _signed_partner(request)
    try:
        return await verify_bearer(request)
    except ServiceError:
        mark(request.scope, "bad_token" if "authorization" in headers else "missing_token")
        raise


async def _signed_partner(request: Request) -> Caller:
    app: Any = request.app
    code = request.query_params.get(PARTNER_QUERY, "")
    body = await read_body(request, max_bytes=app.state.runtime.settings.max_body_bytes)
    database: Database = app.state.database
    async with database.sessionmaker() as session:
        partner = await partners.by_code(session, code) if code else None
    if partner is None or not partner.enabled:
        raise _refuse(request, "unknown_partner", "The webhook's signature is not valid.")
    key = app.state.runtime.settings.secrets_key.get_secret_value()
    secret = unseal(partner.secret_sealed, key=key, channel_id=partner.id)
    try:
        Webhook(secret).verify(body, dict(request.headers), json_parse=False)
    except WebhookVerificationError as exc:
        if "timestamp too" in str(exc):
            raise _refuse(
                request,
                "stale_timestamp",
                "The webhook-timestamp is more than 5 minutes from now: a delayed or replayed message is "
                "refused; send it again with a fresh timestamp and signature.",
            ) from None
        raise _refuse(request, "bad_signature", "The webhook's signature is not valid.") from None
    except (ValueError, binascii.Error):  # a signature or body that is not base64 / UTF-8
        raise _refuse(request, "bad_signature", "The webhook's signature is not valid.") from None
    return Caller(
        subject=f"logistics-partner:{partner.code}",
        scopes=SIGNED_SCOPES,
        claims={"partner": partner.code, "partner_id": partner.id},
    )
