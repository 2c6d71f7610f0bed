"""BG/NBD + Gamma-Gamma: the summary of an order history, and parameter recovery on data simulated
from the model itself (the documented holdout check runs in bench/scenarios/analytics_models.py)."""

from datetime import date, timedelta

import numpy as np
import pytest

from analytics_service.clv.model import (
    BetaGeoParams,
    CustomerHistory,
    expected_purchases,
    fit_bgnbd,
    fit_clv,
    fit_gamma_gamma,
    predict_spend,
    probability_alive,
    summarise,
)

END = date(2026, 6, 30)


def test_summarise_counts_repeat_days_nets_same_day_returns_and_ignores_later_rows() -> None:
    rows = [
        ("a", date(2026, 1, 5), 30.0),
        ("a", date(2026, 1, 5), 20.0),
        ("a", date(2026, 2, 2), 40.0),
        ("a", date(2026, 2, 2), -40.0),  # a whole day returned: not a purchase
        ("a", date(2026, 3, 2), 10.0),
        ("a", date(2026, 7, 1), 99.0),  # after the end
        ("b", date(2026, 6, 1), -5.0),  # only a return: not a customer
    ]
    history = summarise(rows, end=END)
    assert history.customer_ids == ["a"]
    assert history.frequency.tolist() == [1.0]
    assert history.recency[0] == pytest.approx(56 / 7)
    assert history.age[0] == pytest.approx((END - date(2026, 1, 5)).days / 7)
    assert history.monetary.tolist() == [10.0]
    assert history.spend.tolist() == [60.0]


def simulate(seed: int, customers: int, params: BetaGeoParams, weeks: float) -> CustomerHistory:
    rng = np.random.default_rng(seed)
    x, t_x, t, m, first = [], [], [], [], []
    for _ in range(customers):
        rate = rng.gamma(params.r, 1 / params.alpha)
        dropout = rng.beta(params.a, params.b)
        clock, purchases, last = 0.0, 0, 0.0
        while True:
            clock += rng.exponential(1 / rate)
            if clock > weeks:
                break
            purchases, last = purchases + 1, clock
            if rng.random() < dropout:
                break
        mean_value = 20 * rng.gamma(4.0, 1 / 3.0)
        values = rng.gamma(3.0, mean_value / 3.0, purchases) if purchases else np.zeros(0)
        x.append(purchases)
        t_x.append(last)
        t.append(weeks)
        m.append(values.mean() if purchases else 0.0)
        first.append(mean_value)
    spend = np.array(first) + np.array(m) * np.array(x)
    return CustomerHistory(
        [str(i) for i in range(customers)],
        np.array(x, float),
        np.array(t_x, float),
        np.array(t, float),
        np.array(m, float),
        spend,
        np.array(first, float),
    )


def test_bgnbd_recovers_the_parameters_of_simulated_customers() -> None:
    truth = BetaGeoParams(r=0.8, alpha=6.0, a=1.6, b=4.0)
    fitted = fit_bgnbd(simulate(1, 6000, truth, 52.0))
    assert fitted.r == pytest.approx(truth.r, rel=0.3)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.35)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(truth.a / (truth.a + truth.b), rel=0.35)


def test_expected_purchases_grow_with_horizon_and_alive_falls_with_silence() -> None:
    params = BetaGeoParams(r=0.8, alpha=6.0, a=1.6, b=4.0)
    x, t_x, t = np.array([3.0, 3.0]), np.array([50.0, 10.0]), np.array([52.0, 52.0])
    short = expected_purchases(params, 4, x, t_x, t)
    long = expected_purchases(params, 26, x, t_x, t)
    assert np.all(long > short)
    alive = probability_alive(params, x, t_x, t)
    assert alive[0] > alive[1]
    assert probability_alive(params, np.array([0.0]), np.array([0.0]), np.array([52.0]))[0] == 1.0


def test_gamma_gamma_needs_repeat_customers() -> None:
    history = simulate(2, 5, BetaGeoParams(0.8, 6.0, 1.6, 4.0), 52.0)
    assert fit_gamma_gamma(history) is None


def test_predicted_spend_is_positive_and_higher_for_active_regulars() -> None:
    history = simulate(3, 3000, BetaGeoParams(0.8, 6.0, 1.6, 4.0), 52.0)
    model = fit_clv(history, end=END)
    spend = predict_spend(model, history, horizon_days=90)
    assert np.all(spend >= 0)
    regular = (history.frequency >= 5) & (history.recency > 45)
    lapsed = (history.frequency == 1) & (history.recency < 5)
    assert spend[regular].mean() > 3 * spend[lapsed].mean()


def test_summarise_of_dated_rows_feeds_fit() -> None:
    start = END - timedelta(days=300)
    rng = np.random.default_rng(4)
    rows = [
        (f"c{c}", start + timedelta(days=int(d)), float(rng.gamma(2, 15)))
        for c in range(400)
        for d in sorted(rng.choice(300, size=1 + rng.poisson(1.5), replace=False))
    ]
    history = summarise(rows, end=END)
    model = fit_clv(history, end=END)
    assert model.customers == 400
    assert model.purchases.a > 1
    assert 0 < model.net_ratio <= 1
