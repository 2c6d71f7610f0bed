"""analytics-service's models on a retail transaction log, each against a naive baseline on the same
held-out period:

- forecasts: daily units per SKU over the last 28 days against seasonal naive (each day repeats last
  week's): MASE (mean absolute error over the in-sample seasonal-naive one) of the served median, RMSSE
  (root mean squared error over the in-sample seasonal-naive one, the M5 competition's measure) of the
  served mean, and the error of the 28-day totals (what a reorder uses). An absolute error is
  minimised by the median and a squared one by the mean; on a SKU that sells on a few days, the median
  day is 0, so each forecast is scored by the measure it is meant for (all figures are reported for
  both). Also the per-series rule against TSB alone and weekly SES alone, and the daily 80% interval
  coverage;
- recommendations: hit rate at 10 on the last 30 days (a customer with earlier purchases who bought
  at least one SKU they never bought before: is one of those in their 10?), against the 10 most popular
  SKUs of the last 30 days before the cut that the customer has not bought;
- predicted CLV: each customer's net spend in the last 90 days, BG/NBD + Gamma-Gamma fitted on
  everything before, against "past spend repeats" (their spend in the 90 days before the cut).

The log is generated (bench/retail_data.py) unless BENCH_RETAIL_CSV (or `--retail-csv` of this file run
directly) names a CSV shaped like the UCI Online Retail data sets; nothing is tuned to either.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retail_data import Line, generate, read_csv

from analytics_service.clv.model import fit_clv, predict_spend, summarise
from analytics_service.forecasting.demand import (
    SEASON,
    fit_demand,
    seasonal_naive,
    shop_profile,
)
from analytics_service.recommendations.cooccurrence import (
    Interaction,
    item_neighbours,
    popular_items,
    recommend_for_customer,
)

NAME = "analytics_models"
DESCRIPTION = (
    "forecast MASE vs seasonal naive, recommendation hit rate@10 vs popularity, CLV error vs past spend"
)
TIMEOUT_S = 1800.0
FORECAST_HOLDOUT_DAYS = 28
RECS_HOLDOUT_DAYS = 30
CLV_HOLDOUT_DAYS = 90


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def evaluate_forecasts(lines: list[Line]) -> dict[str, Any]:
    units: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for line in lines:
        if line.quantity > 0:
            units[line.sku][line.moment.date()] += line.quantity
    first = min(line.moment.date() for line in lines)
    last = max(line.moment.date() for line in lines)
    length = (last - first).days + 1
    cut = length - FORECAST_HOLDOUT_DAYS
    series: dict[str, np.ndarray] = {}
    for sku, days in units.items():
        values = np.zeros(length)
        for day, quantity in days.items():
            values[(day - first).days] += quantity
        if values[max(cut - 91, 0) : cut].sum() > 0:
            series[sku] = values
    prior = shop_profile([(first, values[:cut]) for values in series.values()])
    started = time.perf_counter()
    per_variant: dict[str, list[float]] = defaultdict(list)
    rmsse: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, list[float]] = defaultdict(list)
    methods: dict[str, int] = defaultdict(int)
    coverage_hits = coverage_days = 0
    skipped = 0
    fit_seconds = 0.0
    for values in series.values():
        train, test = values[:cut], values[cut:]
        selling = np.flatnonzero(train > 0)
        tail = train[selling[0] :] if len(selling) else train
        scale = float(np.mean(np.abs(tail[SEASON:] - tail[:-SEASON]))) if len(tail) > SEASON else 0.0
        squared_scale = float(np.mean((tail[SEASON:] - tail[:-SEASON]) ** 2)) if len(tail) > SEASON else 0.0
        if scale == 0:
            skipped += 1
            continue
        clock = time.perf_counter()
        model = fit_demand(train, first, prior_profile=prior)
        fit_seconds += time.perf_counter() - clock
        methods[model.method] += 1
        forecasts = {
            "rule": model.forecast(FORECAST_HOLDOUT_DAYS),
            "rule_median": model.median(FORECAST_HOLDOUT_DAYS),
            "tsb_only": fit_demand(train, first, prior_profile=prior, method="tsb").forecast(
                FORECAST_HOLDOUT_DAYS
            ),
            "weekly_ses_only": fit_demand(train, first, prior_profile=prior, method="weekly_ses").forecast(
                FORECAST_HOLDOUT_DAYS
            ),
            "seasonal_naive": seasonal_naive(train, FORECAST_HOLDOUT_DAYS),
        }
        for name, forecast in forecasts.items():
            per_variant[name].append(float(np.mean(np.abs(test - forecast))) / scale)
            rmsse[name].append(float(np.sqrt(np.mean((test - forecast) ** 2) / squared_scale)))
            totals[name].append(abs(float(test.sum() - forecast.sum())))
        low, high = model.interval(FORECAST_HOLDOUT_DAYS, 0.8)
        coverage_hits += int(np.sum((test >= low - 1e-9) & (test <= high + 1e-9)))
        coverage_days += len(test)
    mase = {name: float(np.mean(values)) for name, values in per_variant.items()}
    rmsse_mean = {name: float(np.mean(values)) for name, values in rmsse.items()}
    total_error = {name: float(np.sum(values)) for name, values in totals.items()}
    return {
        "series": len(series) - skipped,
        "series_skipped_constant": skipped,
        "methods_chosen": dict(methods),
        "mase_mean": mase,
        "mase_median": {name: float(np.median(values)) for name, values in per_variant.items()},
        "total_28d_abs_error": total_error,
        "rmsse_mean": rmsse_mean,
        "mase_ratio_median_vs_seasonal_naive": _ratio(mase["rule_median"], mase["seasonal_naive"]),
        "mase_ratio_mean_vs_seasonal_naive": _ratio(mase["rule"], mase["seasonal_naive"]),
        "rmsse_ratio_mean_vs_seasonal_naive": _ratio(rmsse_mean["rule"], rmsse_mean["seasonal_naive"]),
        "total_error_ratio_rule_vs_seasonal_naive": _ratio(
            total_error["rule"], total_error["seasonal_naive"]
        ),
        "interval_80_daily_coverage": coverage_hits / coverage_days if coverage_days else None,
        "fit_ms_per_series": 1000 * fit_seconds / max(len(series) - skipped, 1),
        "seconds": time.perf_counter() - started,
    }


def evaluate_recommendations(lines: list[Line]) -> dict[str, Any]:
    last = max(line.moment for line in lines)
    cut = last - timedelta(days=RECS_HOLDOUT_DAYS)
    baskets: dict[str, set[str]] = defaultdict(set)
    history: dict[str, list[Interaction]] = defaultdict(list)
    recent: dict[str, set[str]] = defaultdict(set)
    future: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if line.customer_id is None or line.quantity <= 0:
            continue
        if line.moment < cut:
            baskets[line.customer_id].add(line.sku)
            history[line.customer_id].append(Interaction(line.sku, "purchase", line.moment))
            if line.moment >= cut - timedelta(days=RECS_HOLDOUT_DAYS):
                recent[line.customer_id].add(line.sku)
        else:
            future[line.customer_id].add(line.sku)
    clock = time.perf_counter()
    neighbours = item_neighbours(baskets)
    build_seconds = time.perf_counter() - clock
    popular = popular_items(recent, limit=500)
    hits = {"item_cooccurrence": 0, "popularity": 0}
    recall = {"item_cooccurrence": 0.0, "popularity": 0.0}
    evaluated = 0
    clock = time.perf_counter()
    for customer_id, bought_later in future.items():
        known = baskets.get(customer_id)
        new = bought_later - known if known else set()
        if not known or not new:
            continue
        evaluated += 1
        personal = recommend_for_customer(
            neighbours, history[customer_id], now=cut, limit=10, popular=popular
        )
        baseline = [sku for sku, _ in popular if sku not in known][:10]
        for name, skus in (("item_cooccurrence", [r.sku for r in personal]), ("popularity", baseline)):
            found = len(new & set(skus))
            hits[name] += int(found > 0)
            recall[name] += found / len(new)
    serve_seconds = time.perf_counter() - clock
    hit_rate = {name: hits[name] / evaluated if evaluated else None for name in hits}
    return {
        "customers_evaluated": evaluated,
        "items_with_neighbours": len(neighbours),
        "hit_rate_at_10": hit_rate,
        "recall_at_10": {name: recall[name] / evaluated if evaluated else None for name in recall},
        "hit_rate_ratio_vs_popularity": _ratio(
            hit_rate["item_cooccurrence"] or 0.0, hit_rate["popularity"] or 0.0
        ),
        "neighbours_build_s": build_seconds,
        "personal_ms_per_customer": 1000 * serve_seconds / max(evaluated, 1),
    }


def evaluate_clv(lines: list[Line]) -> dict[str, Any]:
    last = max(line.moment.date() for line in lines)
    cut = last - timedelta(days=CLV_HOLDOUT_DAYS)
    rows = [(line.customer_id, line.moment.date(), line.amount) for line in lines if line.customer_id]
    history = summarise(rows, end=cut)
    clock = time.perf_counter()
    model = fit_clv(history, end=cut)
    fit_seconds = time.perf_counter() - clock
    predicted = predict_spend(model, history, horizon_days=CLV_HOLDOUT_DAYS)
    position = {customer_id: index for index, customer_id in enumerate(history.customer_ids)}
    actual = np.zeros(len(position))
    past = np.zeros(len(position))
    window_start = cut - timedelta(days=CLV_HOLDOUT_DAYS)
    for customer_id, day, amount in rows:
        index = position.get(customer_id)  # type: ignore[arg-type]
        if index is None:
            continue
        if day > cut:
            actual[index] += amount
        elif day > window_start:
            past[index] += amount
    mae = {
        "bgnbd_gamma_gamma": float(np.mean(np.abs(predicted - actual))),
        "past_spend_repeats": float(np.mean(np.abs(past - actual))),
    }
    rmse = {
        "bgnbd_gamma_gamma": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "past_spend_repeats": float(np.sqrt(np.mean((past - actual) ** 2))),
    }
    return {
        "customers": len(position),
        "one_off_buyers_share": float(np.mean(history.frequency == 0)) if len(position) else None,
        "params": {
            "bgnbd": vars(model.purchases),
            "gamma_gamma": vars(model.values) if model.values else None,
            "net_ratio": model.net_ratio,
        },
        "mae": mae,
        "rmse": rmse,
        "mae_ratio_vs_past_spend": _ratio(mae["bgnbd_gamma_gamma"], mae["past_spend_repeats"]),
        "total_actual": float(actual.sum()),
        "total_predicted": {
            "bgnbd_gamma_gamma": float(predicted.sum()),
            "past_spend_repeats": float(past.sum()),
        },
        "fit_s": fit_seconds,
    }


def load(quick: bool, csv_path: str | None) -> tuple[list[Line], dict[str, Any]]:
    if csv_path:
        return list(read_csv(Path(csv_path))), {"data": f"csv:{Path(csv_path).name}"}
    size = (
        {"skus": 300, "customers": 1500, "days": 300}
        if quick
        else {"skus": 1500, "customers": 5000, "days": 400}
    )
    lines = generate(seed=12, start=datetime(2025, 1, 6), **size)
    return lines, {"data": "generated", **size, "seed": 12}


def measure(quick: bool, csv_path: str | None) -> dict[str, Any]:
    clock = time.perf_counter()
    lines, parameters = load(quick, csv_path)
    parameters.update(
        lines=len(lines),
        load_s=time.perf_counter() - clock,
        forecast_holdout_days=FORECAST_HOLDOUT_DAYS,
        recs_holdout_days=RECS_HOLDOUT_DAYS,
        clv_holdout_days=CLV_HOLDOUT_DAYS,
    )
    forecasts = evaluate_forecasts(lines)
    recs = evaluate_recommendations(lines)
    clv = evaluate_clv(lines)
    mase = forecasts["mase_mean"]
    return {
        "parameters": parameters,
        "headline": {
            "forecast MASE ratio median/seasonal-naive (<1 better)": forecasts[
                "mase_ratio_median_vs_seasonal_naive"
            ],
            "forecast RMSSE ratio mean/seasonal-naive (<1 better)": forecasts[
                "rmsse_ratio_mean_vs_seasonal_naive"
            ],
            "forecast 28-day total error ratio (<1 better)": forecasts[
                "total_error_ratio_rule_vs_seasonal_naive"
            ],
            "recs hit@10 ratio co-occurrence/popularity (>1 better)": recs["hit_rate_ratio_vs_popularity"],
            "CLV MAE ratio model/past-spend (<1 better)": clv["mae_ratio_vs_past_spend"],
        },
        "figures": {"forecasts": forecasts, "recommendations": recs, "clv": clv},
        "notes": [
            f"data: {parameters['data']}, {len(lines)} lines",
            "forecast MASE and RMSSE are means over the SKUs that sold in the 91 days before the cut; "
            "'rule' is the served mean, 'rule_median' the served median",
        ],
        "table": {
            "columns": ["figure", "model", "baseline"],
            "rows": [
                ["forecast MASE, median forecast", mase["rule_median"], mase["seasonal_naive"]],
                ["forecast MASE, mean forecast", mase["rule"], mase["seasonal_naive"]],
                [
                    "forecast RMSSE, mean forecast",
                    forecasts["rmsse_mean"]["rule"],
                    forecasts["rmsse_mean"]["seasonal_naive"],
                ],
                [
                    "forecast 28-day total abs error",
                    forecasts["total_28d_abs_error"]["rule"],
                    forecasts["total_28d_abs_error"]["seasonal_naive"],
                ],
                [
                    "recs hit rate@10",
                    recs["hit_rate_at_10"]["item_cooccurrence"],
                    recs["hit_rate_at_10"]["popularity"],
                ],
                ["CLV MAE (90 days)", clv["mae"]["bgnbd_gamma_gamma"], clv["mae"]["past_spend_repeats"]],
            ],
            "caption": (
                "baseline: seasonal naive / popularity of the last 30 days / past 90 days' spend repeats"
            ),
        },
    }


async def run(quick: bool) -> dict[str, Any]:
    return await asyncio.to_thread(measure, quick, os.environ.get("BENCH_RETAIL_CSV"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--retail-csv", help="a UCI Online Retail shaped CSV instead of generated data")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.quick, arguments.retail_csv), indent=2, default=str))
