"""API models of customer profiles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.bounds import CountryCode, FiniteFloat, Int64, LongStr, SaneDate, ShortStr

AttributeValue = str | int | float | bool | None
AttributeValueIn = LongStr | Int64 | FiniteFloat | bool | None
"""An attribute value as sent: a bounded string, a 64-bit integer, a finite number, a boolean or null."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailIn(_In):
    address: str = Field(min_length=1, max_length=320)
    verified: bool = False


class PhoneIn(_In):
    number: str = Field(
        min_length=1,
        max_length=40,
        description="Any format; stored as E.164, an extension after it as `;ext=12`",
    )
    verified: bool = False


class AddressIn(_In):
    kind: Literal["shipping", "billing"]
    line1: str = Field(
        default="", max_length=200, description="Street; may be left out if city or postcode is given"
    )
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(default="", max_length=100, description="City or suburb")
    postcode: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: CountryCode
    is_default: bool = False
    verified: bool = False

    @model_validator(mode="after")
    def _locates_something(self) -> AddressIn:
        if not (self.line1.strip() or self.city.strip() or (self.postcode or "").strip()):
            raise ValueError("An address needs at least a street (line1), a city or a postcode.")
        return self


class ExternalIdentity(_In):
    source: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z0-9_.-]+$", description="e.g. web, pos, marketplace"
    )
    id: str = Field(min_length=1, max_length=200)


class CustomerCreate(_In):
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    emails: list[EmailIn] = Field(default_factory=list, max_length=20)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=50)
    birthday: SaneDate | None = None
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    country: CountryCode | None = None
    attributes: dict[ShortStr, AttributeValueIn] = Field(default_factory=dict, max_length=50)
    tags: list[ShortStr] = Field(default_factory=list, max_length=50)
    external_ids: list[ExternalIdentity] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _identifiable(self) -> CustomerCreate:
        """A profile must say who it is: a name, an email, a phone or an external id."""
        named = any(name and name.strip() for name in (self.first_name, self.last_name))
        if not (named or self.emails or self.phones or self.external_ids):
            raise ValueError(
                "a customer needs at least one identifying field: first_name, last_name, emails, phones "
                "or external_ids"
            )
        return self


class CustomerUpdate(_In):
    """Only the fields sent change; lists (emails, phones, addresses, tags) are replaced whole."""

    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    emails: list[EmailIn] | None = Field(default=None, max_length=20)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    addresses: list[AddressIn] | None = Field(default=None, max_length=50)
    birthday: SaneDate | None = None
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    country: CountryCode | None = None
    attributes: dict[ShortStr, AttributeValueIn] | None = Field(default=None, max_length=50)
    tags: list[ShortStr] | None = Field(default=None, max_length=50)
    external_ids: list[ExternalIdentity] | None = Field(default=None, max_length=20)


class IdentifyRequest(_In):
    """Any identifiers of the shopper; profile fields are used only when a customer is created."""

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    external_id: ExternalIdentity | None = None
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    country: CountryCode | None = None
    locale: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


class EmailRead(BaseModel):
    address: str
    verified: bool
    primary: bool


class PhoneRead(BaseModel):
    number: str
    verified: bool
    primary: bool


class AddressRead(BaseModel):
    id: str
    kind: Literal["shipping", "billing"]
    line1: str
    line2: str | None = None
    city: str
    postcode: str | None = None
    region: str | None = None
    country: str
    is_default: bool
    verified: bool


class ConsentState(BaseModel):
    status: Literal["granted", "withdrawn"]
    recorded_at: datetime
    source: str
    lawful_basis: str


class CustomerRead(BaseModel):
    id: str
    version: int
    status: Literal["active", "merged"]
    merged_into_id: str | None = None
    pii_masked: bool = Field(description="True unless the caller holds customers:pii")
    first_name: str | None = None
    last_name: str | None = None
    emails: list[EmailRead]
    phones: list[PhoneRead]
    addresses: list[AddressRead]
    birthday: str | None = Field(default=None, description="YYYY-MM-DD, or ****-**-** when masked")
    locale: str | None = None
    country: str | None = None
    attributes: dict[str, AttributeValue]
    tags: list[str]
    external_ids: list[ExternalIdentity]
    consents: dict[str, ConsentState]
    quality_score: float
    quality: dict[str, bool]
    created_at: datetime
    updated_at: datetime


class IdentifyResult(BaseModel):
    created: bool
    customer: CustomerRead


class PiiReadEntry(BaseModel):
    id: int
    customer_id: str
    subject: str
    client_id: str | None
    route: str
    request_id: str | None
    read_at: datetime
