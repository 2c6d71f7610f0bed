"""The demand models, days of cover and reorder suggestions on series with known answers."""

from datetime import date

import numpy as np
import pytest

from analytics_service.forecasting.demand import (
    DemandOutlook,
    days_of_cover,
    dense_daily,
    fit_demand,
    intermittency,
    outlook,
    seasonal_naive,
    shop_profile,
    weekday_profile,
)
from analytics_service.forecasting.reorder import SupplyTerms, suggest_reorder

MONDAY = date(2026, 1, 5)


def stored(history: np.ndarray) -> DemandOutlook:
    return outlook(fit_demand(history, MONDAY), horizon=63, interval_level=0.8, service_level=0.95)


def weekly_series(weeks: int, pattern: list[float]) -> np.ndarray:
    return np.tile(np.array(pattern, dtype=float), weeks)


def test_dense_daily_fills_missing_days_and_floors_returns_at_zero() -> None:
    series = dense_daily(MONDAY, date(2026, 1, 9), {date(2026, 1, 6): 3.0, date(2026, 1, 8): -2.0})
    assert series.tolist() == [0.0, 3.0, 0.0, 0.0, 0.0]


def test_intermittency_measures_interval_from_first_sale() -> None:
    adi, cv2 = intermittency(np.array([0, 0, 2, 0, 0, 0, 2, 0], dtype=float))
    assert adi == pytest.approx(3.0)
    assert cv2 == 0.0


def test_regular_series_gets_weekly_ses_and_its_weekday_shape() -> None:
    pattern = [10, 10, 10, 10, 20, 30, 0]
    model = fit_demand(weekly_series(20, pattern), MONDAY)
    assert model.method == "weekly_ses"
    assert model.forecast(7) == pytest.approx(pattern, abs=1.0)


def test_intermittent_series_gets_tsb_and_its_average_rate() -> None:
    rng = np.random.default_rng(3)
    history = (rng.random(364) < 0.1) * 5.0
    model = fit_demand(history, MONDAY)
    assert model.method == "tsb"
    assert model.forecast(28).mean() == pytest.approx(history.mean(), rel=0.5)


def test_tsb_decays_a_sku_that_stopped_selling() -> None:
    history = np.concatenate([(np.arange(200) % 3 == 0) * 4.0, np.zeros(120)])
    model = fit_demand(history, MONDAY)
    assert model.method == "tsb"
    assert model.rate < 0.5 * history[:200].mean()


def test_no_sales_forecasts_zero_and_no_cover_limit() -> None:
    model = fit_demand(np.zeros(60), MONDAY)
    assert model.method == "no_sales"
    assert model.forecast(5).tolist() == [0.0] * 5
    assert days_of_cover(stored(np.zeros(60)), 10) is None


def test_slow_seller_borrows_the_shop_weekday_profile() -> None:
    shop = shop_profile([(MONDAY, weekly_series(10, [1, 1, 1, 1, 1, 1, 0]))])
    assert shop[6] == 0.0
    history = np.zeros(70)
    history[3] = 1.0
    profile = weekday_profile(history, MONDAY, shop)
    assert profile[6] == 0.0
    assert profile.mean() == pytest.approx(1.0)


def test_interval_contains_the_forecast_and_never_goes_negative() -> None:
    rng = np.random.default_rng(5)
    history = rng.poisson(3.0, 200).astype(float)
    model = fit_demand(history, MONDAY)
    low, high = model.interval(14, 0.8)
    mean = model.forecast(14)
    assert np.all(low >= 0)
    assert np.all(low <= mean + 1e-9)
    assert np.all(high >= mean)


def test_interval_covers_about_its_level_on_fresh_data() -> None:
    rng = np.random.default_rng(8)
    history = rng.poisson(4.0, 400).astype(float)
    model = fit_demand(history[:300], MONDAY)
    low, high = model.interval(100, 0.8)
    covered = np.mean((history[300:] >= low) & (history[300:] <= high))
    assert 0.7 <= covered <= 0.95


def test_demand_quantile_grows_with_days_and_quantile() -> None:
    rng = np.random.default_rng(9)
    model = fit_demand(rng.poisson(2.0, 300).astype(float), MONDAY)
    assert model.demand_quantile(7, 0.5) < model.demand_quantile(7, 0.95) < model.demand_quantile(14, 0.95)


def test_seasonal_naive_repeats_last_week() -> None:
    history = weekly_series(3, [1, 2, 3, 4, 5, 6, 7])
    assert seasonal_naive(history, 9).tolist() == [1, 2, 3, 4, 5, 6, 7, 1, 2]


def test_days_of_cover_walks_the_daily_forecast() -> None:
    demand = stored(weekly_series(20, [2, 2, 2, 2, 2, 2, 2]))
    assert days_of_cover(demand, 7.0) == pytest.approx(3.5, abs=0.1)
    assert days_of_cover(demand, 0) == 0.0
    assert days_of_cover(demand, 400.0) == pytest.approx(200, abs=2)


def test_reorder_below_reorder_point_orders_up_to_level_raised_to_moq_and_multiple() -> None:
    model = stored(weekly_series(20, [5, 5, 5, 5, 5, 5, 5]))
    suggestion = suggest_reorder(
        model, available=10, terms=SupplyTerms(lead_time_days=7, min_order_quantity=100, order_multiple=12)
    )
    assert suggestion.reorder
    assert suggestion.quantity == 108
    assert suggestion.stockout_before_arrival
    assert "minimum order quantity 100" in suggestion.reason


def test_reorder_not_needed_when_position_covers_lead_time() -> None:
    model = stored(weekly_series(20, [5, 5, 5, 5, 5, 5, 5]))
    suggestion = suggest_reorder(model, available=30, on_order=100, terms=SupplyTerms(lead_time_days=7))
    assert not suggestion.reorder
    assert suggestion.quantity == 0
    assert suggestion.position == 130


def test_reorder_quantity_fills_the_gap_to_order_up_to_level() -> None:
    model = stored(weekly_series(20, [5, 5, 5, 5, 5, 5, 5]))
    suggestion = suggest_reorder(model, available=0, terms=SupplyTerms(lead_time_days=14), review_days=7)
    assert suggestion.reorder
    assert suggestion.quantity == pytest.approx(105, abs=5)


def test_outlook_extends_past_its_horizon_with_the_weekly_pattern_and_a_wider_margin() -> None:
    rng = np.random.default_rng(11)
    demand = stored(rng.poisson(3.0, 300).astype(float))
    assert demand.forecast(70)[63:70] == pytest.approx(demand.forecast(63)[56:63])
    assert demand.demand_quantile(63) <= demand.demand_quantile(120)
    assert demand.demand_quantile(120) > demand.forecast(120).sum()


def test_median_of_a_slow_seller_is_zero_and_of_a_regular_one_near_its_mean() -> None:
    rng = np.random.default_rng(12)
    slow = fit_demand((rng.random(300) < 0.1) * 3.0, MONDAY)
    assert slow.forecast(7).sum() > 0
    assert slow.median(7).tolist() == [0.0] * 7
    regular = fit_demand(rng.poisson(20.0, 300).astype(float), MONDAY)
    assert regular.median(7) == pytest.approx(regular.forecast(7), rel=0.1)
