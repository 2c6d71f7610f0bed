"""The consent ledger: every grant and withdrawal, never updated, only appended."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class ConsentRecord(SQLModel, table=True):
    __tablename__ = "consent_records"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customers.id", max_length=36, index=True)
    purpose: str = Field(max_length=40)
    status: str = Field(max_length=20)
    source: str = Field(max_length=100)
    lawful_basis: str = Field(max_length=40)
    recorded_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
