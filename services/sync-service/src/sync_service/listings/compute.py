"""The desired state of a SKU on a channel, computed from the facts (pure functions, no I/O).

Price: the channel's own price series if it has one, else the general one, in the channel's currency;
the best running promotion for that channel applies (promotions do not stack, as in product-service);
then the channel's price adjustment. A computed amount (a percentage off, an adjustment) is rounded half
up to the currency's minor unit: whole yen on a JPY channel, cents on a EUR one. Stock: the available
units at the channel's locations (all when it names none) minus its safety buffer, never below zero.
Publishable: the product is active, sold on the channel (its `channels` empty or naming it), in one of the
channel's categories, complete enough for the channel's threshold, and has a price there.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from servicekit.bounds import MONEY_DECIMALS, minor_units
from sync_service.channels.models import Channel
from sync_service.listings.models import (
    CatalogPrice,
    CatalogPromotion,
    CatalogStock,
)

ALL_CHANNELS = ""


class SkuFacts(NamedTuple):
    """A SKU's facts: the models, or plain rows with their attributes (the consumer and a resync read
    rows, not ORM objects)."""

    variant: Any  # CatalogVariant
    product: Any  # CatalogProduct
    prices: Sequence[CatalogPrice]
    stock: Sequence[CatalogStock]


@functools.lru_cache(maxsize=256)
def step_of(currency: str) -> int:
    """The smallest amount of `currency` in the hundredths amounts are kept in (`MONEY_DECIMALS`): 100 for
    JPY (no minor unit), 1 for EUR (and for a currency of three decimals, whose third is not kept)."""
    return int(10 ** max(0, MONEY_DECIMALS - minor_units(currency)))


def _round(value: Decimal, step: int = 1) -> int:
    """`value` (hundredths) rounded half up to a multiple of `step`."""
    if step == 1:
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return int((value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step


def discounted(base_minor: int, promotion: CatalogPromotion, step: int = 1) -> int:
    """The price after `promotion`, in whole `step`s (the currency's minor unit)."""
    if promotion.kind == "percentage":
        off = _round(Decimal(base_minor) * Decimal(promotion.percent_bp or 0) / 10_000, step)
        return max(0, base_minor - off)
    return max(0, base_minor - (promotion.amount_minor or 0))


def adjusted(amount_minor: int, adjustment_bp: int, step: int = 1) -> int:
    """The price after the channel's adjustment, in whole `step`s (the currency's minor unit)."""
    if not adjustment_bp and amount_minor % step == 0:  # the common case, exact without Decimal
        return max(0, amount_minor)
    return max(0, _round(Decimal(amount_minor) * (10_000 + adjustment_bp) / 10_000, step))


def promotion_applies(
    promotion: CatalogPromotion, *, channel: Channel, sku: str, path: Sequence[str]
) -> bool:
    if promotion.channels and channel.code not in promotion.channels:
        return False
    if promotion.kind == "amount" and promotion.currency != channel.currency:
        return False
    return sku in promotion.skus or bool(set(promotion.category_ids).intersection(path))


def _money(minor: int) -> str:
    """`str(Decimal(minor) / 100)` for the amounts a listing carries (0 or more), in integer arithmetic:
    "19.99", "19.9", "20"."""
    if minor < 0:
        return str(Decimal(minor) / 100)
    whole, cents = divmod(minor, 100)
    if not cents:
        return str(whole)
    return f"{whole}.{cents // 10}" if cents % 10 == 0 else f"{whole}.{cents:02d}"


def desired_state(
    channel: Channel, facts: SkuFacts, promotions: Iterable[CatalogPromotion]
) -> tuple[dict[str, Any], bool]:
    """The listing's desired state (JSON-ready) and whether it is publishable. `channel`, the facts and
    the promotions may be plain rows with the models' attributes (a resync computes thousands of states:
    one pass over the prices, the promotions only when there are any)."""
    product, variant = facts.product, facts.variant
    code, currency = channel.code, channel.currency
    reasons: list[str] = []
    own: CatalogPrice | None = None
    general: CatalogPrice | None = None
    for candidate in facts.prices:
        if candidate.currency != currency:
            continue
        if candidate.channel == code:
            if own is None:
                own = candidate
        elif candidate.channel == ALL_CHANNELS and general is None:
            general = candidate
    base = own if own is not None else general
    price: str | None = None
    sale: dict[str, Any] | None = None
    if base is None:
        reasons.append(f"no {currency} price")
    else:
        step = step_of(currency)
        best: tuple[int, CatalogPromotion] | None = None
        for promotion in promotions:
            if promotion_applies(promotion, channel=channel, sku=variant.sku, path=product.category_path):
                amount = discounted(base.amount_minor, promotion, step)
                if (
                    best is None
                    or amount < best[0]
                    or (amount == best[0] and promotion.promotion_id < best[1].promotion_id)
                ):
                    best = (amount, promotion)
        price = _money(adjusted(base.amount_minor, channel.price_adjustment_bp, step))
        if best is not None and best[0] < base.amount_minor:
            sale = {
                "price": _money(adjusted(best[0], channel.price_adjustment_bp, step)),
                "promotion_id": best[1].promotion_id,
                "starts_at": best[1].starts_at.isoformat(),
                "ends_at": best[1].ends_at.isoformat(),
            }
    locations = channel.location_codes
    if locations:
        available = sum(s.available for s in facts.stock if s.location_code in locations)
    else:
        available = sum(s.available for s in facts.stock)
    quantity = max(0, available - channel.safety_buffer)
    if product.status != "active":
        reasons.append(f"product is {product.status}")
    if product.channels and code not in product.channels:
        reasons.append("product is not published to this channel")
    if channel.category_ids and not set(channel.category_ids).intersection(product.category_path):
        reasons.append("category not sold on this channel")
    ratio = product.completeness.get(code, 1.0) if product.completeness else 1.0
    if ratio < channel.completeness_threshold:
        reasons.append(f"completeness {ratio:.0%} below the channel's {channel.completeness_threshold:.0%}")
    publishable = not reasons
    state = {
        "sku": variant.sku,
        "product_id": product.product_id,
        "title": product.title,
        "brand": product.brand,
        "description": product.description,
        "gtin": variant.gtin,
        "attributes": {**product.attributes, **variant.attributes},
        "variant_attributes": variant.attributes,
        "media_urls": product.media_urls,
        "currency": currency,
        "locale": channel.locale,
        "price": price,
        "sale": sale,
        "quantity": quantity,
        "published": publishable,
        "unpublished_because": reasons,
    }
    return state, publishable


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


class CanonicalText(str):
    """A state's canonical JSON (`state_json`), marked as such: stored as it is (`models.CanonicalJSON`)."""

    __slots__ = ()


def state_json(state: dict[str, Any]) -> CanonicalText:
    """A listing state as canonical JSON (keys sorted, no spaces): what `state_hash` digests, what the
    listings' `desired` column holds, and a body a push may carry as it is."""
    return CanonicalText(_CANONICAL.encode(state))


COMPUTATION_VERSION = 2  # 2: computed amounts rounded to the currency's minor unit (whole yen)
"""Bump when `desired_state` computes something else from the same facts: every listing's `facts_stamp`
then differs, so the next resync recomputes them all instead of skipping those whose facts did not change."""

_CHANNEL_FIELDS = (
    "code",
    "kind",
    "currency",
    "locale",
    "price_adjustment_bp",
    "location_codes",
    "safety_buffer",
    "category_ids",
    "completeness_threshold",
)
_PROMOTION_FIELDS = (
    "promotion_id",
    "kind",
    "percent_bp",
    "amount_minor",
    "currency",
    "skus",
    "category_ids",
    "channels",
    "starts_at",
    "ends_at",
)


def context_digest(channel: Any, promotions: Iterable[Any]) -> str:
    """What a channel's desired states depend on besides a SKU's own facts: the channel's fields that
    `desired_state` reads, the promotions running for it (all of each one's fields: one that starts,
    ends, or changes by the clock or by an event changes the digest) and `COMPUTATION_VERSION`. A
    listing's `facts_stamp` is its SKU's facts version and this digest."""
    running = sorted(
        (
            [str(getattr(p, name)) for name in _PROMOTION_FIELDS]
            for p in promotions
            if not p.channels or channel.code in p.channels
        ),
        key=lambda fields: fields[0],
    )
    described = [COMPUTATION_VERSION, [str(getattr(channel, name)) for name in _CHANNEL_FIELDS], running]
    return hashlib.sha256(_CANONICAL.encode(described).encode()).hexdigest()[:32]


STAMP_SEPARATOR = ":"


def facts_stamp(facts_version: int, context: str) -> str:
    """A listing's stamp: the facts version of its SKU and the context digest its state was computed in
    (compared in SQL too: the version as text, then `STAMP_SEPARATOR` and the context)."""
    return f"{facts_version}{STAMP_SEPARATOR}{context}"


def digest_of(canonical: str) -> str:
    """`state_hash` of the state whose `state_json` is `canonical`."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def state_hash(state: dict[str, Any] | None) -> str | None:
    """A stable digest of a listing state: equal states, equal hashes, whatever the key order."""
    if state is None:
        return None
    return digest_of(_CANONICAL.encode(state))
