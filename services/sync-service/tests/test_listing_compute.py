"""A listing's price on a channel: computed amounts rounded to the currency's minor unit (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from sync_service.listings.compute import SkuFacts, desired_state, step_of

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _channel(currency: str, adjustment_bp: int) -> Any:
    return SimpleNamespace(
        code="shop",
        currency=currency,
        price_adjustment_bp=adjustment_bp,
        location_codes=[],
        safety_buffer=0,
        category_ids=[],
        completeness_threshold=0.0,
        locale="ja-JP" if currency == "JPY" else "de-DE",
    )


def _facts(currency: str, amount_minor: int) -> SkuFacts:
    product = SimpleNamespace(
        product_id="p-1",
        status="active",
        title="Tea bowl",
        brand=None,
        description=None,
        attributes={},
        media_urls=[],
        channels=[],
        category_path=["c-1"],
        completeness={},
    )
    variant = SimpleNamespace(sku="SKU-1", gtin=None, attributes={})
    price = SimpleNamespace(currency=currency, channel="", amount_minor=amount_minor)
    return SkuFacts(variant, product, [price], [SimpleNamespace(location_code="wh", available=3)])


def _percent_off(bp: int) -> Any:
    return SimpleNamespace(
        promotion_id="promo-1",
        kind="percentage",
        percent_bp=bp,
        amount_minor=None,
        currency=None,
        channels=[],
        skus=["SKU-1"],
        category_ids=[],
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("currency", "amount_minor", "adjustment_bp", "percent_bp", "price", "sale"),
    [
        # JPY has no minor unit: 1,000 yen + 3.33 % is 1,033 yen, not 1,033.30
        ("JPY", 100_000, 333, None, "1033", None),
        # half up: 1,000 yen + 0.05 % = 1,000.5 -> 1,001
        ("JPY", 100_000, 5, None, "1001", None),
        # 15 % off 999 yen is 149.85 off -> 150 off -> 849 yen
        ("JPY", 99_900, 0, 1500, "999", "849"),
        # both: 849 yen + 3.33 % = 877.27 -> 877; 999 + 3.33 % = 1,032.27 -> 1,032
        ("JPY", 99_900, 333, 1500, "1032", "877"),
        # a price with a fraction of a yen from upstream is whole yen on the channel
        ("JPY", 1_050, 0, None, "11", None),
        # cents stay cents: 10.00 EUR + 3.33 % = 10.333 -> 10.33; 15 % off 9.99 = 8.49 (1.4985 off -> 1.50)
        ("EUR", 1_000, 333, None, "10.33", None),
        ("EUR", 999, 0, 1500, "9.99", "8.49"),
    ],
)
def test_computed_amounts_are_whole_units_of_the_currency(
    currency: str, amount_minor: int, adjustment_bp: int, percent_bp: int | None, price: str, sale: str | None
) -> None:
    promotions = [_percent_off(percent_bp)] if percent_bp is not None else []
    state, publishable = desired_state(
        _channel(currency, adjustment_bp), _facts(currency, amount_minor), promotions
    )
    assert publishable
    assert state["price"] == price
    assert (state["sale"] or {}).get("price") == sale


def test_the_step_of_a_currency_is_its_minor_unit_in_hundredths() -> None:
    assert (step_of("JPY"), step_of("KRW"), step_of("EUR"), step_of("USD"), step_of("BHD")) == (
        100,
        100,
        1,
        1,
        1,
    )
