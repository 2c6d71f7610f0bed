"""Tables of the gateway: people, machine clients, signing keys, refresh tokens, sessions, audit.

Times that the gateway computes with (expiry, lockout) are epoch seconds, the same on SQLite and
PostgreSQL; `created_at`-like columns shown to people are timezone-aware datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime
from servicekit.events import models as platform_models

__all__ = [
    "ApiClient",
    "AuditEvent",
    "BrowserSession",
    "LoginThrottle",
    "RecoveryCode",
    "RefreshToken",
    "RevokedToken",
    "SigningKey",
    "User",
    "platform_models",
]


def _ts(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=sa.Column(UTCDateTime(), nullable=nullable),
    )


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=40)
    email: str = Field(max_length=320, unique=True)
    password_hash: str = Field(max_length=300)
    roles: list[str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    status: str = Field(default="active", max_length=20)
    totp_secret_enc: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    totp_enabled: bool = Field(default=False)
    totp_last_step: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))
    created_at: datetime = _ts()


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=40, foreign_key="users.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    used_at: datetime | None = _ts(nullable=True)


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"

    client_id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    role: str = Field(max_length=40)
    secret_hash: str = Field(max_length=64)
    status: str = Field(default="active", max_length=20)
    created_at: datetime = _ts()
    secret_rotated_at: datetime | None = _ts(nullable=True)
    disabled_at: datetime | None = _ts(nullable=True)


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_keys"
    # At most one active key: concurrent rotations (or gateways creating the first key) cannot leave two.
    __table_args__ = (
        sa.Index(
            "ux_signing_keys_one_active",
            "status",
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        ),
    )

    kid: str = Field(primary_key=True, max_length=64)
    public_pem: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    private_pem_enc: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(default="active", max_length=20)
    created_at: datetime = _ts()
    retired_at: datetime | None = _ts(nullable=True)
    published_until: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    family_id: str = Field(max_length=40, index=True)
    user_id: str = Field(max_length=40, index=True)
    scope: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    issued_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    used_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))
    revoked_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))
    access_jti: str | None = Field(default=None, max_length=64)
    """The access token issued with this refresh token: revoked with the family on reuse."""
    access_expires_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))


class RevokedToken(SQLModel, table=True):
    """Access tokens revoked before their expiry (RFC 7009), refused by the gateway."""

    __tablename__ = "revoked_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class BrowserSession(SQLModel, table=True):
    __tablename__ = "browser_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=40, index=True)
    csrf_token: str = Field(max_length=64)
    scope: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    expires_at: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))


class LoginThrottle(SQLModel, table=True):
    """Consecutive login failures per account or IP (`key` = "account:<email>" / "ip:<address>")."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=400)
    failures: int = Field(default=0)
    locked_until: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    action: str = Field(max_length=80, index=True)
    outcome: str = Field(max_length=20)
    actor: str | None = Field(default=None, max_length=400, index=True)
    target: str | None = Field(default=None, max_length=400)
    ip: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
