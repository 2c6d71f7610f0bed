"""Predicted customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005) for how many purchases a
customer will make, Gamma-Gamma (Fader, Hardie & Lee 2005b) for what each will be worth.

Own numpy/scipy implementation of the published likelihoods: the maintained alternatives are
`lifetimes` (unmaintained since 2020, pins old pandas/scipy APIs) and `pymc-marketing` (pulls PyMC and
PyTensor, a C compiler at import and minutes of sampling); the maximum-likelihood fit here is ~150
lines, runs in well under a second on tens of thousands of customers and is tested against data
simulated from the model itself.

Inputs per customer, the `lifetimes` convention, with time in weeks and a purchase = a day with net
positive spend:

- `frequency` x: repeat purchases (purchase days after the first);
- `recency` t_x: time from the first to the last purchase; `age` T: from the first purchase to the
  end of the calibration period;
- `monetary` m_x: the mean value of the repeat purchases (Gamma-Gamma uses customers with x > 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

FloatArray = NDArray[np.float64]
DAYS_PER_WEEK = 7.0


@dataclass(frozen=True)
class CustomerHistory:
    """Per-customer summary of the calibration period, arrays aligned with `customer_ids`."""

    customer_ids: list[str]
    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    monetary: FloatArray
    spend: FloatArray
    first_purchase_value: FloatArray


def summarise(purchases: Iterable[tuple[str, date, float]], *, end: date) -> CustomerHistory:
    """Summarise (customer, day, net amount) rows up to and including `end` (later rows are ignored).
    Amounts of one customer and day are added (so a same-day return nets out); only days with a
    positive total are purchases; `spend` is the net total, returns on other days included."""
    per_day: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for customer_id, day, amount in purchases:
        if day <= end:
            per_day[customer_id][day] += amount
    ids, frequency, recency, age, monetary, spend, first_value = [], [], [], [], [], [], []
    for customer_id in sorted(per_day):
        days = per_day[customer_id]
        buying = sorted(day for day, amount in days.items() if amount > 0)
        if not buying:
            continue
        first, last = buying[0], buying[-1]
        repeat_values = [days[day] for day in buying[1:]]
        ids.append(customer_id)
        frequency.append(len(buying) - 1)
        recency.append((last - first).days / DAYS_PER_WEEK)
        age.append((end - first).days / DAYS_PER_WEEK)
        monetary.append(float(np.mean(repeat_values)) if repeat_values else 0.0)
        spend.append(sum(days.values()))
        first_value.append(days[first])
    return CustomerHistory(
        ids,
        np.array(frequency, dtype=np.float64),
        np.array(recency, dtype=np.float64),
        np.array(age, dtype=np.float64),
        np.array(monetary, dtype=np.float64),
        np.array(spend, dtype=np.float64),
        np.array(first_value, dtype=np.float64),
    )


@dataclass(frozen=True)
class BetaGeoParams:
    r: float
    alpha: float
    a: float
    b: float


def bgnbd_log_likelihood(params: BetaGeoParams, x: FloatArray, t_x: FloatArray, t: FloatArray) -> FloatArray:
    """Per-customer log-likelihood of BG/NBD (equation 6 of Fader, Hardie & Lee 2005)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + t)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(
            x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf
        )
    return np.asarray(common + np.logaddexp(alive, dropped), dtype=np.float64)


def fit_bgnbd(history: CustomerHistory, *, penalty: float = 1e-4) -> BetaGeoParams:
    """Maximum-likelihood BG/NBD parameters (L-BFGS-B on log parameters, a > 1 so expectations exist;
    `penalty` x sum of squared parameters keeps a degenerate sample from running off to infinity)."""
    x, t_x, t = history.frequency, history.recency, history.age

    def objective(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        params = BetaGeoParams(r, alpha, a, b)
        value = -float(np.sum(bgnbd_log_likelihood(params, x, t_x, t))) / max(len(x), 1)
        return value + penalty * float(np.sum(np.exp(log_params) ** 2))

    scale = float(np.mean(t)) if len(t) and np.mean(t) > 0 else 1.0
    start = np.log([1.0, scale, 2.0, 2.0])
    bounds = [(-8.0, 6.0), (-8.0, 10.0), (np.log(1.0 + 1e-3), 8.0), (-8.0, 8.0)]
    best = minimize(objective, start, method="L-BFGS-B", bounds=bounds)
    r, alpha, a, b = np.exp(best.x)
    return BetaGeoParams(float(r), float(alpha), float(a), float(b))


def expected_purchases(
    params: BetaGeoParams, horizon_weeks: float, x: FloatArray, t_x: FloatArray, t: FloatArray
) -> FloatArray:
    """Expected purchases of each customer in the next `horizon_weeks` (equation 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = horizon_weeks / (alpha + t + horizon_weeks)
    hypergeometric = hyp2f1(r + x, b + x, a + b + x - 1, z)
    numerator = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + t) / (alpha + t + horizon_weeks)) ** (r + x) * hypergeometric)
    )
    return np.asarray(numerator * probability_alive(params, x, t_x, t), dtype=np.float64)


def probability_alive(params: BetaGeoParams, x: FloatArray, t_x: FloatArray, t: FloatArray) -> FloatArray:
    """P(the customer has not dropped out | history) (equation 11)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        odds = np.where(
            x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + t) / (alpha + t_x)) ** (r + x), 0.0
        )
    return np.asarray(1.0 / (1.0 + odds), dtype=np.float64)


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


def fit_gamma_gamma(history: CustomerHistory, *, penalty: float = 1e-4) -> GammaGammaParams | None:
    """Maximum-likelihood Gamma-Gamma parameters on the repeat customers; None with fewer than 10."""
    repeat = (history.frequency > 0) & (history.monetary > 0)
    x, m = history.frequency[repeat], history.monetary[repeat]
    if len(x) < 10:
        return None
    scale = float(np.mean(m))
    m_scaled = m / scale

    def objective(log_params: FloatArray) -> float:
        p, q, v = np.exp(log_params)
        log_likelihood = (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m_scaled)
            + (p * x) * np.log(x)
            - (p * x + q) * np.log(v + m_scaled * x)
        )
        return -float(np.mean(log_likelihood)) + penalty * float(np.sum(np.exp(log_params) ** 2))

    bounds = [(-6.0, 6.0), (np.log(1.0 + 1e-3), 8.0), (-8.0, 8.0)]
    best = minimize(objective, np.log([2.0, 3.0, 2.0]), method="L-BFGS-B", bounds=bounds)
    p, q, v = np.exp(best.x)
    return GammaGammaParams(float(p), float(q), float(v * scale))


def expected_order_value(params: GammaGammaParams | None, history: CustomerHistory) -> FloatArray:
    """Expected value of a future purchase per customer: the Gamma-Gamma posterior mean for repeat
    customers, the population mean for one-off buyers (whose first purchase the model does not use)."""
    if params is None:
        repeat = history.monetary[history.frequency > 0]
        fallback = float(np.mean(repeat)) if len(repeat) else float(np.mean(history.first_purchase_value))
        return np.where(history.frequency > 0, history.monetary, fallback)
    p, q, v = params.p, params.q, params.v
    x, m = history.frequency, history.monetary
    population_mean = p * v / (q - 1)
    weight = p * x / (p * x + q - 1)
    return np.asarray((1 - weight) * population_mean + weight * m, dtype=np.float64)


@dataclass(frozen=True)
class ClvModel:
    """A fitted model and what it needs to predict."""

    purchases: BetaGeoParams
    values: GammaGammaParams | None
    net_ratio: float
    customers: int
    end: date


def fit_clv(history: CustomerHistory, *, end: date) -> ClvModel:
    """Fit both parts. `net_ratio` (net over gross purchase value in the calibration period, in (0, 1])
    turns predicted purchases into predicted net spend when some of what is bought comes back."""
    purchases = fit_bgnbd(history)
    values = fit_gamma_gamma(history)
    gross = float(np.sum(history.first_purchase_value) + np.sum(history.monetary * history.frequency))
    net = float(np.sum(history.spend))
    net_ratio = min(max(net / gross, 0.0), 1.0) if gross > 0 else 1.0
    return ClvModel(purchases, values, net_ratio, len(history.customer_ids), end)


def predict_spend(model: ClvModel, history: CustomerHistory, *, horizon_days: int) -> FloatArray:
    """Predicted net spend of each customer over the next `horizon_days` (no discounting)."""
    purchases = expected_purchases(
        model.purchases, horizon_days / DAYS_PER_WEEK, history.frequency, history.recency, history.age
    )
    return np.asarray(
        purchases * expected_order_value(model.values, history) * model.net_ratio, dtype=np.float64
    )
