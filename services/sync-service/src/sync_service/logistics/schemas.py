"""API models of logistics partners."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.catalog.shipments import ShipmentStatus

PartnerCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{1,49}$")]
CarrierCode = Annotated[str, StringConstraints(min_length=1, max_length=100)]
StatusOverrides = Annotated[
    dict[CarrierCode, ShipmentStatus],
    Field(
        max_length=200,
        description="Carrier status code -> normalised status; consulted before the carrier tables",
    ),
]


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PartnerCode = Field(description="Short stable name, e.g. acme-3pl; the webhook's ?partner=")
    name: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The gateway client (role logistics) that may also post for this partner with a "
        "bearer token; its overrides then apply",
    )
    status_overrides: StatusOverrides = Field(default_factory=dict)


class PartnerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)
    status_overrides: StatusOverrides | None = None
    enabled: bool | None = None


class PartnerRead(BaseModel):
    id: str
    code: str
    name: str
    client_id: str | None
    status_overrides: dict[str, str]
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class PartnerWithSecret(PartnerRead):
    signing_secret: str = Field(
        description="The Standard Webhooks secret (whsec_…) the partner signs with. Shown only in this "
        "answer: it is stored encrypted and never shown again (rotate it to get a new one)."
    )
