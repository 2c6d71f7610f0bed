"""Logistics partners (3PLs) that report shipments: their signing secret is stored encrypted."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from servicekit.db import UTCDateTime


class LogisticsPartner(SQLModel, table=True):
    __tablename__ = "logistics_partners"

    id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=50, unique=True)
    name: str = Field(max_length=200)
    client_id: str | None = Field(default=None, max_length=100, unique=True)
    secret_sealed: str = Field(max_length=500)
    status_overrides: dict[str, str] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    enabled: bool = True
    version: int = 1
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
