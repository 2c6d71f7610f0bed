"""API models of the catalog."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from product_service.catalog.gtin import is_valid_gtin
from servicekit.bounds import JSONObject, LineText, MultilineText, ShortStr, SmallJSONObject, Title

AttributeValues = JSONObject
"""Attribute values: at most 200, nested at most 6 levels, numbers finite."""
VariantAxes = SmallJSONObject
"""Variant axes (size, colour…): at most 50, nested at most 4 levels, numbers finite."""

AttributeType = Literal["text", "number", "boolean", "enum", "measurement"]
ProductStatus = Literal["draft", "active", "archived"]
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$"
CHANNEL_PATTERN = r"^[a-z][a-z0-9_\-]{0,49}$"


class AttributeDefinition(BaseModel):
    """One typed attribute of a family."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    label: str | None = Field(default=None, max_length=200)
    type: AttributeType
    options: list[ShortStr] | None = Field(
        default=None, max_length=1000, description="Allowed values of an enum attribute"
    )
    units: list[ShortStr] | None = Field(
        default=None, max_length=100, description="Allowed units of a measurement attribute"
    )
    required_channels: list[ShortStr] = Field(
        default_factory=list, max_length=50, description="Channels on which this attribute must be filled"
    )

    @model_validator(mode="after")
    def _options_match_type(self) -> AttributeDefinition:
        if self.type == "enum" and not self.options:
            raise ValueError("an enum attribute needs options")
        if self.type == "measurement" and not self.units:
            raise ValueError("a measurement attribute needs units")
        if self.type != "enum" and self.options is not None:
            raise ValueError("only enum attributes have options")
        if self.type != "measurement" and self.units is not None:
            raise ValueError("only measurement attributes have units")
        return self


def _unique_codes(value: list[AttributeDefinition]) -> list[AttributeDefinition]:
    codes = [attribute.code for attribute in value]
    if len(codes) != len(set(codes)):
        raise ValueError("attribute codes must be unique")
    return value


AttributeDefinitions = Annotated[list[AttributeDefinition], AfterValidator(_unique_codes)]


class FamilyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    attributes: AttributeDefinitions = Field(default_factory=list, max_length=500)


class FamilyUpdate(BaseModel):
    """Fields to change; an absent field is left as it is. `attributes` replaces the whole list: send
    the list you read with your changes (add, remove, relabel, change options, units or required
    channels). A change that would make any product's current values invalid is refused (409)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    attributes: AttributeDefinitions | None = Field(default=None, max_length=500)

    @field_validator("title", "attributes")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class FamilyRead(BaseModel):
    id: str
    code: str
    title: str
    attributes: list[AttributeDefinition]
    version: int = Field(description="Goes up with every change; the ETag")
    created_at: datetime
    updated_at: datetime | None = None


class FamilyChangeImpact(BaseModel):
    products: int = Field(description="Products of the family, all checked against the new definition")
    completeness_changed: int = Field(description="Products whose completeness on some channel changed")
    now_below_threshold: dict[str, int] = Field(
        description="Per channel: products published to it that the change took below its threshold "
        "(they are no longer publishable there until their missing attributes are filled)"
    )


class FamilyUpdateResult(FamilyRead):
    impact: FamilyChangeImpact


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, max_length=100)
    family_id: str | None = Field(
        default=None, max_length=100, description="Attribute family of products in this subtree"
    )


class CategoryRead(BaseModel):
    id: str
    parent_id: str | None
    title: str
    family_id: str | None
    created_at: datetime


class CategoryNode(BaseModel):
    id: str
    title: str
    family_id: str | None
    children: list[CategoryNode] = Field(default_factory=list)


class VariantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(pattern=SKU_PATTERN)
    gtin: str | None = Field(default=None, description="GTIN-8/12/13/14 with a valid check digit")
    attributes: VariantAxes = Field(default_factory=dict, description="Variant axes, e.g. size, colour")

    @field_validator("gtin")
    @classmethod
    def _valid_gtin(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_gtin(value):
            raise ValueError("not a valid GTIN (8, 12, 13 or 14 digits with a correct check digit)")
        return value


class VariantRead(BaseModel):
    sku: str
    gtin: str | None
    attributes: dict[str, Any]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title = Field(min_length=1, max_length=300)
    brand: LineText | None = Field(default=None, max_length=200)
    description: MultilineText | None = Field(default=None, max_length=20_000)
    category_id: str | None = Field(default=None, max_length=100)
    status: ProductStatus = "draft"
    attributes: AttributeValues = Field(default_factory=dict)
    media_urls: list[str] = Field(default_factory=list, max_length=50)
    channels: list[str] = Field(
        default_factory=list, max_length=50, description="Channels the product is published to"
    )
    variants: list[VariantCreate] = Field(default_factory=list, max_length=500)

    @field_validator("channels")
    @classmethod
    def _channel_codes(cls, value: list[str]) -> list[str]:
        return _check_channels(value)

    @field_validator("media_urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _check_urls(value)


class ProductUpdate(BaseModel):
    """Fields to change; an absent field is left as it is."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = Field(default=None, min_length=1, max_length=300)
    brand: LineText | None = Field(default=None, max_length=200)
    description: MultilineText | None = Field(default=None, max_length=20_000)
    category_id: str | None = Field(default=None, max_length=100)
    status: ProductStatus | None = None
    attributes: AttributeValues | None = Field(
        default=None, description="Replaces the attribute values; null values remove an attribute"
    )
    media_urls: list[str] | None = Field(default=None, max_length=50)
    channels: list[str] | None = Field(default=None, max_length=50)

    @field_validator("channels")
    @classmethod
    def _channel_codes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_channels(value)

    @field_validator("media_urls")
    @classmethod
    def _urls(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_urls(value)

    @field_validator("title", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class ChannelCompleteness(BaseModel):
    completeness: float = Field(description="Share of the channel's required attributes that are filled")
    missing: list[str] = Field(description="Required attributes that are not filled")
    threshold: float
    publishable: bool


class ProductRead(BaseModel):
    id: str
    title: str
    brand: str | None
    description: str | None
    category_id: str | None
    family_id: str | None
    status: ProductStatus
    attributes: dict[str, Any]
    media_urls: list[str]
    channels: list[str]
    variants: list[VariantRead]
    completeness: dict[str, ChannelCompleteness]
    version: int
    created_at: datetime
    updated_at: datetime


class ProductSummary(BaseModel):
    id: str
    title: str
    brand: str | None
    category_id: str | None
    status: ProductStatus
    version: int


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None = None


def _check_channels(value: list[str]) -> list[str]:

    for channel in value:
        if not re.match(CHANNEL_PATTERN, channel):
            raise ValueError(f"{channel!r} is not a channel code (lower-case letters, digits, - and _)")
    return sorted(set(value))


def _check_urls(value: list[str]) -> list[str]:
    for url in value:
        if not url.startswith(("https://", "http://")) or len(url) > 2000:
            raise ValueError(f"{url[:100]!r} is not an http(s) URL")
    return value


class CompletenessEntry(BaseModel):
    product_id: str
    title: str
    status: ProductStatus
    channel: str
    completeness: float
    missing: list[str]
    threshold: float
    publishable: bool


class CompletenessReport(BaseModel):
    items: list[CompletenessEntry]
    next_cursor: str | None = None


StockState = Literal["in_stock", "out_of_stock"]
