"""Tables every service has: the outbox (events to publish) and the inbox (events handled)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    event_type: str = Field(max_length=200)
    topic: str = Field(max_length=200)
    key: str = Field(max_length=200)
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(max_length=200, primary_key=True)
    event_id: str = Field(max_length=64, primary_key=True)
    event_type: str = Field(max_length=200)
    processed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    scope: str = Field(max_length=200, primary_key=True)
    key: str = Field(max_length=200, primary_key=True)
    fingerprint: str = Field(max_length=64)
    status_code: int
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    headers: dict[str, str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
