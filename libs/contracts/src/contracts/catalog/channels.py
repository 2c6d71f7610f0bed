"""Events on ecom.channels.v1, produced by sync-service: the channel registry. Key: channel id.

A channel is a place the catalog is sold: a web store or marketplace that receives pushes (`webhook`),
a physical store's point of sale (`pos`) or a pulled product feed (`feed`). Other services keep a
projection of these events (product-service refuses a channel code it does not know). Events never carry
a channel's endpoint or signing secret.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register

ChannelKind = Literal["webhook", "pos", "feed"]
ChannelStatus = Literal["enabled", "paused", "retired"]
DriftPolicy = Literal["report", "heal"]


class _ChannelFacts(EventData):
    channel_id: str
    code: str = Field(description="The channel's code, used by products, prices, promotions and buffers")
    title: str = Field(description="The channel's name as the registry shows it")
    kind: ChannelKind
    status: ChannelStatus
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code the channel sells in")
    locale: str = Field(description="BCP 47 tag, e.g. fr-FR")
    price_adjustment_percent: Decimal = Field(
        description="Added to every price on this channel, in percent (e.g. 10 = +10 %, -5 = -5 %)"
    )
    category_ids: list[str] = Field(description="Categories it sells (with subcategories); empty means all")
    location_codes: list[str] = Field(description="Stock locations it sells from; empty means all")
    safety_buffer: int = Field(ge=0, description="Units held back from the channel's available stock")
    completeness_threshold: float = Field(
        ge=0, le=1, description="Share of required attributes a product needs to be published there"
    )
    drift_policy: DriftPolicy
    version: int = Field(description="The channel's version after the change (its ETag)")


@register(
    "ecom.channel.registered.v1",
    topic=topics.CHANNELS,
    producer="sync-service",
    description="A sales channel was registered.",
)
class ChannelRegistered(_ChannelFacts):
    pass


@register(
    "ecom.channel.updated.v1",
    topic=topics.CHANNELS,
    producer="sync-service",
    description="A channel's settings changed (paused or enabled included); `changed` names the fields.",
)
class ChannelUpdated(_ChannelFacts):
    changed: list[str] = Field(description="Names of the fields that changed")


@register(
    "ecom.channel.retired.v1",
    topic=topics.CHANNELS,
    producer="sync-service",
    description="A channel was retired: nothing is pushed to it any more and its code is no longer accepted.",
)
class ChannelRetired(_ChannelFacts):
    pass
