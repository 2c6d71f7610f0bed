"""Customer tables: the profile (PII sealed in `pii`), its identifiers, blocking keys, tags, PII reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


def _tz(nullable: bool = False, index: bool = False) -> Any:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=36)
    version: int = 1
    status: str = Field(default="active", max_length=16, index=True)
    merged_into_id: str | None = Field(default=None, max_length=36)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=35)
    country: str | None = Field(default=None, max_length=2, index=True)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    consents: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    quality_score: float = Field(default=0.0, index=True)
    quality: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))
    key_id: str | None = Field(default=None, max_length=64)
    wrapped_key: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary(), nullable=True))
    pii: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary(), nullable=True))
    index_key_id: str | None = Field(
        default=None, max_length=16, description="Blind-index key its identifiers and blocking keys use"
    )
    created_at: datetime = Field(sa_column=_tz(index=True))
    updated_at: datetime = Field(sa_column=_tz(index=True))


class CustomerIdentifier(SQLModel, table=True):
    """An exact-match identifier. Email and external ids are unique (`unique_key`), phones are not
    (households share them). Email and phone are stored only as their blind index."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (sa.Index("ix_customer_identifiers_kind_blind_index", "kind", "blind_index"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customers.id", max_length=36, index=True)
    kind: str = Field(max_length=80)
    blind_index: str = Field(max_length=64)
    unique_key: str | None = Field(default=None, max_length=150, unique=True)
    value: str | None = Field(default=None, max_length=200, description="Clear value: external ids only")
    created_at: datetime = Field(sa_column=_tz())


class BlockingKey(SQLModel, table=True):
    """Keys that put possible duplicates in the same block (all keyed hashes, no clear PII)."""

    __tablename__ = "customer_blocking_keys"
    __table_args__ = (sa.Index("ix_customer_blocking_keys_key_customer", "key", "customer_id"),)

    customer_id: str = Field(foreign_key="customers.id", max_length=36, primary_key=True)
    # Read through (key, customer_id) only; an index on key alone would be a second copy to write.
    key: str = Field(max_length=80, primary_key=True)


class CustomerTag(SQLModel, table=True):
    __tablename__ = "customer_tags"

    customer_id: str = Field(foreign_key="customers.id", max_length=36, primary_key=True)
    tag: str = Field(max_length=100, primary_key=True, index=True)


class PiiRead(SQLModel, table=True):
    """One unmasked read of a customer's PII: who, when, through which route."""

    __tablename__ = "pii_reads"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=36, index=True)
    subject: str = Field(max_length=200)
    client_id: str | None = Field(default=None, max_length=200)
    route: str = Field(max_length=200)
    request_id: str | None = Field(default=None, max_length=100)
    read_at: datetime = Field(sa_column=_tz(index=True))


class CustomerConsentState(SQLModel, table=True):
    """Current consent per purpose (derived from `Customer.consents`, kept for filtering)."""

    __tablename__ = "customer_consent_states"
    __table_args__ = (sa.Index("ix_customer_consent_states_purpose_status", "purpose", "status"),)

    customer_id: str = Field(foreign_key="customers.id", max_length=36, primary_key=True)
    purpose: str = Field(max_length=40, primary_key=True)
    status: str = Field(max_length=20)
