"""Machine clients (storefront, POS, logistics, sync-service): an id and a secret shown once, kept hashed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.models import ApiClient
from gateway.roles import CLIENT_ROLES
from gateway.security import hash_secret, new_secret, secret_matches


class ClientError(ValueError):
    """A client could not be created or changed as asked."""


async def create_client(session: AsyncSession, *, name: str, role: str) -> tuple[ApiClient, str]:
    """A new active client and its secret (the only time the secret is available in clear)."""
    if role not in {r.value for r in CLIENT_ROLES}:
        allowed = ", ".join(sorted(r.value for r in CLIENT_ROLES))
        raise ClientError(f"role must be one of: {allowed}")
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientError("name must have 1 to 200 characters")
    secret = new_secret()
    client = ApiClient(
        client_id=f"{role}-{secrets.token_hex(8)}",
        name=name,
        role=role,
        secret_hash=hash_secret(secret),
        status="active",
        created_at=datetime.now(UTC),
    )
    session.add(client)
    await session.flush()
    return client, secret


async def get_client(session: AsyncSession, client_id: str) -> ApiClient:
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise ClientError(f"no client {client_id}")
    return client


async def list_clients(session: AsyncSession) -> list[ApiClient]:
    return list((await session.scalars(select(ApiClient).order_by(col(ApiClient.created_at)))).all())


class SecretRotatedMeanwhile(ClientError):
    """Another rotation of the client's secret committed between this one's read and its write."""


async def rotate_secret(session: AsyncSession, client_id: str) -> tuple[ApiClient, str]:
    """A new secret; the old one stops working at once. A compare-and-set on the secret read: of
    rotations racing each other exactly one succeeds (the others raise SecretRotatedMeanwhile), so no
    caller is handed a secret that another rotation replaced at once."""
    client = await get_client(session, client_id)
    secret = new_secret()
    now = datetime.now(UTC)
    replaced = await session.execute(
        update(ApiClient)
        .where(col(ApiClient.client_id) == client_id, col(ApiClient.secret_hash) == client.secret_hash)
        .values(secret_hash=hash_secret(secret), secret_rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    if replaced.rowcount != 1:  # type: ignore[attr-defined]
        raise SecretRotatedMeanwhile(
            f"the secret of {client_id} was rotated by a concurrent request; rotate again to get one"
        )
    await session.refresh(client)
    return client, secret


async def set_status(session: AsyncSession, client_id: str, *, active: bool) -> ApiClient:
    client = await get_client(session, client_id)
    client.status = "active" if active else "disabled"
    client.disabled_at = None if active else datetime.now(UTC)
    await session.flush()
    return client


async def authenticate_client(session: AsyncSession, client_id: str, secret: str) -> ApiClient | None:
    """The active client with this id and secret, else None."""
    client = await session.get(ApiClient, client_id)
    if client is None or client.status != "active" or not secret_matches(secret, client.secret_hash):
        return None
    return client
