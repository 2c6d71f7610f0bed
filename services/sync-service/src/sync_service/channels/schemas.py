"""API models of the channel registry."""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from servicekit.bounds import CurrencyCode
from sync_service.common import CHANNEL_CODE_PATTERN

ChannelKind = Literal["webhook", "pos", "feed"]
ChannelStatus = Literal["enabled", "paused", "retired"]
DriftPolicy = Literal["report", "heal"]
PUSHED_KINDS = ("webhook", "pos")

LOCATION_CODE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,49}$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Z]{2})?$"


def _http_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise ValueError("not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http(s) URL with a host")
    if url.userinfo:
        # The endpoint is shown to every reader of the channel and in logs: a secret goes in the signing
        # secret, never in the URL.
        raise ValueError("must not carry a user name or password")
    try:
        address = ipaddress.ip_address(url.host)
    except ValueError:
        try:
            # The resolver also reads the legacy IPv4 forms of inet_aton: 2852039166, 0xa9fea9fe and
            # 169.254.43518 all reach 169.254.169.254.
            address = ipaddress.IPv4Address(socket.inet_aton(url.host))
        except OSError:
            return value  # a host name
    if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
        # Link-local holds cloud instances' metadata services (169.254.169.254): never a sales channel.
        # Loopback and private networks stay allowed (a store's POS on the LAN, the dev stack's channel).
        raise ValueError(f"must not be a link-local, multicast, unspecified or reserved address ({address})")
    return value


Endpoint = Annotated[str, StringConstraints(min_length=8, max_length=2000), AfterValidator(_http_url)]
CategoryId = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9_\-]+$")]
LocationCode = Annotated[str, StringConstraints(pattern=LOCATION_CODE_PATTERN)]
PriceAdjustment = Annotated[
    Decimal,
    Field(
        ge=Decimal("-90"),
        le=Decimal("500"),
        decimal_places=2,
        allow_inf_nan=False,
        description="Percent added to every price on the channel (10 = +10 %, -5 = -5 %)",
    ),
]


class _ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    endpoint: Endpoint | None = Field(
        default=None, description="Where pushes go (webhook and pos channels need one)"
    )
    currency: CurrencyCode
    locale: str = Field(default="en-US", pattern=LOCALE_PATTERN, description="BCP 47 tag, e.g. fr-FR")
    price_adjustment_percent: PriceAdjustment = Decimal("0")
    category_ids: list[CategoryId] = Field(
        default_factory=list, max_length=200, description="Categories it sells; empty means every one"
    )
    location_codes: list[LocationCode] = Field(
        default_factory=list, max_length=100, description="Stock locations it sells from; empty means all"
    )
    safety_buffer: int = Field(default=0, ge=0, le=1_000_000, description="Units held back per SKU")
    completeness_threshold: float = Field(
        default=1.0, ge=0, le=1, allow_inf_nan=False, description="Share of required attributes needed"
    )
    drift_policy: DriftPolicy = "report"


class ChannelCreate(_ChannelSettings):
    code: str = Field(pattern=CHANNEL_CODE_PATTERN, description="Unique; lower-case letters, digits, - and _")
    kind: ChannelKind
    status: Literal["enabled", "paused"] = "enabled"

    @model_validator(mode="after")
    def _pushed_channels_need_an_endpoint(self) -> ChannelCreate:
        if self.kind in PUSHED_KINDS and self.endpoint is None:
            raise ValueError(f"a {self.kind} channel needs an endpoint")
        return self


class ChannelUpdate(BaseModel):
    """The fields to change; code and kind never change. `status: retired` retires the channel for good."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    endpoint: Endpoint | None = None
    currency: CurrencyCode | None = None
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN)
    price_adjustment_percent: PriceAdjustment | None = None
    category_ids: list[CategoryId] | None = Field(default=None, max_length=200)
    location_codes: list[LocationCode] | None = Field(default=None, max_length=100)
    safety_buffer: int | None = Field(default=None, ge=0, le=1_000_000)
    completeness_threshold: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    drift_policy: DriftPolicy | None = None
    status: ChannelStatus | None = None


class ChannelRead(BaseModel):
    id: str
    code: str
    name: str
    kind: ChannelKind
    endpoint: str | None
    currency: str
    locale: str
    price_adjustment_percent: Decimal
    category_ids: list[str]
    location_codes: list[str]
    safety_buffer: int
    completeness_threshold: float
    drift_policy: DriftPolicy
    status: ChannelStatus
    version: int
    created_at: datetime
    updated_at: datetime


class ChannelWithSecret(ChannelRead):
    signing_secret: str = Field(
        description="The Standard Webhooks secret pushes are signed with; shown only in this answer"
    )
