"""Idempotency-Key: a retried write returns the first answer instead of acting twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import Conflict, UnprocessableEntity
from servicekit.events.models import IdempotencyRecord


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Any unique string; a retry with the same key returns the first response",
        ),
    ] = None,
) -> str | None:
    """The Idempotency-Key header; optional, a request without one is simply not deduplicated."""
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key_header)]


def fingerprint(payload: Any) -> str:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]

    def to_response(self) -> JSONResponse:
        response = JSONResponse(content=None, status_code=self.status_code, headers=self.headers)
        response.body = self.body
        response.headers["content-length"] = str(len(self.body))
        response.headers["Idempotent-Replayed"] = "true"
        return response


async def lookup(
    session: AsyncSession, *, scope: str, key: str, request_fingerprint: str
) -> StoredResponse | None:
    """The stored answer for this key, or None; 422 if the key was used with a different request."""
    record = await session.get(IdempotencyRecord, (scope, key))
    if record is None:
        return None
    if record.fingerprint != request_fingerprint:
        raise UnprocessableEntity("This Idempotency-Key was already used with a different request.")
    return StoredResponse(record.status_code, record.body, dict(record.headers))


async def remember(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    request_fingerprint: str,
    status_code: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """Store the answer in the request's transaction; a concurrent twin gets 409 and may retry."""
    session.add(
        IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=request_fingerprint,
            status_code=status_code,
            body=body,
            headers=headers or {},
            created_at=datetime.now(UTC),
        )
    )
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("A request with this Idempotency-Key is in progress; retry shortly.") from None


async def once(
    session: AsyncSession,
    scope: str,
    key: str | None,
    request: BaseModel,
    act: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 201,
) -> Any:
    """Run a write at most once per Idempotency-Key (within `scope`, e.g. the route and the caller): with
    a key already used for the same `request` body, its first answer is returned (`Idempotent-Replayed:
    true`) and `act` does not run; with a new key, `act`'s answer is stored with the write, in the same
    transaction. Without a key, `act` just runs."""
    if key is None:
        return await act()
    request_fingerprint = fingerprint(request.model_dump(mode="json"))
    stored = await lookup(session, scope=scope, key=key, request_fingerprint=request_fingerprint)
    if stored is not None:
        return stored.to_response()
    answer = await act()
    await remember(
        session,
        scope=scope,
        key=key,
        request_fingerprint=request_fingerprint,
        status_code=status_code,
        body=answer.model_dump_json().encode(),
        headers={"content-type": "application/json"},
    )
    return answer
