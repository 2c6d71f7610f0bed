"""The refit job: read the store, fit every model in a worker thread, replace the model tables in one
transaction, record the run. One refit at a time (a compare-and-set on the lock row), started by
`POST /v1/models/refit` or by the schedule (`ANALYTICS_MODEL_REFIT_INTERVAL_S`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import FastAPI
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.clv import service as clv_service
from analytics_service.clv.model import (
    expected_purchases,
    fit_clv,
    predict_spend,
    probability_alive,
    summarise,
)
from analytics_service.clv.models import PredictedClv
from analytics_service.config import Settings
from analytics_service.fitting import data
from analytics_service.fitting.models import REFIT_LOCK, ModelLock, ModelRun
from analytics_service.forecasting.demand import dense_daily, fit_demand, outlook, shop_profile
from analytics_service.forecasting.models import ALL_LOCATIONS, DemandForecast
from analytics_service.recommendations.cooccurrence import item_neighbours, popular_items
from analytics_service.recommendations.models import PopularProduct, ProductNeighbour
from contracts import uuid7
from servicekit.db import Database, as_utc, utc_now
from servicekit.errors import Conflict
from servicekit.transitions import compare_and_set

log = logging.getLogger(__name__)

POPULAR_WINDOW_DAYS = 30
POPULAR_KEPT = 200
INSERT_CHUNK = 1000


async def start_run(
    database: Database, *, trigger: str, actor: str | None, stale_after_s: int, now: datetime | None = None
) -> ModelRun:
    """Take the refit lock (compare-and-set; a holder without a heartbeat for the stale time loses it)
    and record a running run; 409 while another refit runs."""
    stamp = now or utc_now()
    run_id = str(uuid7())
    async with database.session() as session:
        stale_before = stamp - timedelta(seconds=stale_after_s)
        won = await compare_and_set(
            session,
            update(ModelLock)
            .where(
                col(ModelLock.name) == REFIT_LOCK,
                or_(col(ModelLock.run_id).is_(None), col(ModelLock.taken_at) < stale_before),
            )
            .values(run_id=run_id, taken_at=stamp),
        )
        if not won:
            raise Conflict("A refit is already running.")
        await session.execute(
            update(ModelRun)
            .where(col(ModelRun.status) == "running")
            .values(status="failed", finished_at=stamp, error="The refit stopped without finishing.")
        )
        run = ModelRun(
            id=run_id,
            status="running",
            trigger=trigger,
            actor=actor,
            started_at=stamp,
            heartbeat_at=stamp,
            data_until=(stamp - timedelta(days=1)).date(),
        )
        session.add(run)
    return run


@dataclass
class Fitted:
    forecasts: list[dict[str, Any]] = field(default_factory=list)
    neighbours: list[dict[str, Any]] = field(default_factory=list)
    popular: list[dict[str, Any]] = field(default_factory=list)
    clv: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def fit_forecasts(
    series: dict[tuple[str, str], dict[date, float]],
    *,
    first: date,
    last: date,
    settings: Settings,
    run_id: str,
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One forecast per (SKU, location) with sales, and one per SKU over all its locations."""
    totals: dict[tuple[str, str], dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for (sku, _location), days in series.items():
        for day, units in days.items():
            totals[(sku, ALL_LOCATIONS)][day] += units
    everything = {**series, **totals}
    dense = {key: dense_daily(first, last, days) for key, days in everything.items()}
    prior = shop_profile(
        [(first, values) for (sku, location), values in dense.items() if location == ALL_LOCATIONS]
    )
    rows: list[dict[str, Any]] = []
    methods: dict[str, int] = defaultdict(int)
    for (sku, location), values in dense.items():
        selling = np.flatnonzero(values > 0)
        if len(selling) == 0:
            continue
        start = first + timedelta(days=int(selling[0]))
        model = fit_demand(values[selling[0] :], start, prior_profile=prior)
        stored = outlook(
            model,
            horizon=settings.forecast_horizon_days,
            interval_level=settings.forecast_interval_level,
            service_level=settings.reorder_service_level,
        )
        methods[model.method] += 1
        rows.append(
            {
                "sku": sku,
                "location_id": location,
                "run_id": run_id,
                "method": model.method,
                "history_start": start,
                "history_end": last,
                "rate": model.rate,
                "adi": model.adi if np.isfinite(model.adi) else None,
                "interval_level": settings.forecast_interval_level,
                "service_level": settings.reorder_service_level,
                "mean": [round(float(v), 4) for v in stored.mean],
                "median": [round(float(v), 4) for v in stored.median],
                "lower": [round(float(v), 4) for v in stored.lower],
                "upper": [round(float(v), 4) for v in stored.upper],
                "lead_quantiles": [round(float(v), 4) for v in stored.lead_quantiles],
                "params": {**model.params, "profile": [round(float(v), 4) for v in model.profile]},
                "fitted_at": now,
            }
        )
    return rows, dict(methods)


def fit_recommendations(
    bought: list[tuple[str, str, datetime]], *, settings: Settings, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Neighbours per SKU from every customer's purchases; bestsellers of the last 30 days."""
    baskets: dict[str, set[str]] = defaultdict(set)
    recent: dict[str, set[str]] = defaultdict(set)
    since = now - timedelta(days=POPULAR_WINDOW_DAYS)
    for customer, sku, placed_at in bought:
        baskets[customer].add(sku)
        if placed_at is not None and as_utc(placed_at) >= since:
            recent[customer].add(sku)
    neighbours = item_neighbours(baskets, top_k=settings.recommendation_neighbours)
    rows = [
        {"sku": sku, "rank": rank, "neighbour_sku": n.sku, "score": n.score, "customers": n.customers}
        for sku, found in neighbours.items()
        for rank, n in enumerate(found, start=1)
    ]
    popular = popular_items(recent or baskets, limit=POPULAR_KEPT)
    return rows, [
        {"rank": rank, "sku": sku, "customers": count} for rank, (sku, count) in enumerate(popular, start=1)
    ]


def fit_lifetime_values(
    values: list[tuple[str, date, float]], *, end: date, settings: Settings, run_id: str, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Predicted CLV of every customer with a counted order; needs 10 customers to fit."""
    history = summarise(values, end=end)
    if len(history.customer_ids) < 10:
        return [], {"customers": len(history.customer_ids), "skipped": "fewer than 10 customers with orders"}
    model = fit_clv(history, end=end)
    horizon_weeks = settings.clv_horizon_days / 7.0
    spend = predict_spend(model, history, horizon_days=settings.clv_horizon_days)
    purchases = expected_purchases(
        model.purchases, horizon_weeks, history.frequency, history.recency, history.age
    )
    alive = probability_alive(model.purchases, history.frequency, history.recency, history.age)
    rows = [
        {
            "customer_id": customer_id,
            "run_id": run_id,
            "horizon_days": settings.clv_horizon_days,
            "expected_purchases": float(purchases[index]),
            "probability_alive": float(alive[index]),
            "predicted_spend_minor": round(float(spend[index])) if np.isfinite(spend[index]) else 0,
            "fitted_at": now,
        }
        for index, customer_id in enumerate(history.customer_ids)
    ]
    summary = {
        "customers": len(rows),
        "bgnbd": vars(model.purchases),
        "gamma_gamma": vars(model.values) if model.values else None,
        "net_ratio": model.net_ratio,
    }
    return rows, summary


async def _heartbeat(database: Database, run_id: str) -> None:
    async with database.session() as session:
        await session.execute(
            update(ModelLock)
            .where(col(ModelLock.name) == REFIT_LOCK, col(ModelLock.run_id) == run_id)
            .values(taken_at=utc_now())
        )
        await session.execute(
            update(ModelRun).where(col(ModelRun.id) == run_id).values(heartbeat_at=utc_now())
        )


async def _finish(database: Database, run_id: str, **values: Any) -> bool:
    """running -> succeeded | failed (compare-and-set) and release the lock held by this run."""
    async with database.session() as session:
        moved = await compare_and_set(
            session,
            update(ModelRun)
            .where(col(ModelRun.id) == run_id, col(ModelRun.status) == "running")
            .values(finished_at=utc_now(), heartbeat_at=utc_now(), **values),
        )
        await session.execute(
            update(ModelLock)
            .where(col(ModelLock.name) == REFIT_LOCK, col(ModelLock.run_id) == run_id)
            .values(run_id=None)
        )
    return moved


async def run_refit(database: Database, settings: Settings, *, run_id: str) -> None:
    """Fit and store every model for run `run_id` (already started); never raises."""
    try:
        now = utc_now()
        last = (now - timedelta(days=1)).date()
        first = last - timedelta(days=settings.forecast_history_days - 1)
        async with database.session() as session:
            series = await data.units_sold(session, first=first, last=last)
            bought = await data.purchases(session)
            values = await data.order_values(session)
        await _heartbeat(database, run_id)
        fitted = Fitted()
        fitted.forecasts, methods = await asyncio.to_thread(
            fit_forecasts, series, first=first, last=last, settings=settings, run_id=run_id, now=now
        )
        await _heartbeat(database, run_id)
        fitted.neighbours, fitted.popular = await asyncio.to_thread(
            fit_recommendations, bought, settings=settings, now=now
        )
        await _heartbeat(database, run_id)
        fitted.clv, clv_summary = await asyncio.to_thread(
            fit_lifetime_values, values, end=last, settings=settings, run_id=run_id, now=now
        )
        fitted.summary = {
            "forecasts": {
                "series": len(fitted.forecasts),
                "methods": methods,
                "history_from": first.isoformat(),
            },
            "recommendations": {
                "skus_with_neighbours": len({row["sku"] for row in fitted.neighbours}),
                "neighbour_rows": len(fitted.neighbours),
                "popular": len(fitted.popular),
                "customers_with_purchases": len({customer for customer, _, _ in bought}),
            },
            "clv": clv_summary,
        }
        await _store(database, fitted, run_id=run_id)
        await _finish(database, run_id, status="succeeded", summary=fitted.summary, data_until=last)
    except Exception as error:  # the run records why it failed; the service goes on
        log.exception("refit %s failed", run_id)
        with contextlib.suppress(Exception):
            await _finish(database, run_id, status="failed", error=f"{type(error).__name__}: {error}"[:2000])


async def _store(database: Database, fitted: Fitted, *, run_id: str) -> None:
    """Replace the model tables in one transaction, only while this run still holds the lock."""
    async with database.session() as session:
        holder = await session.scalar(select(col(ModelLock.run_id)).where(col(ModelLock.name) == REFIT_LOCK))
        if holder != run_id:
            raise Conflict("The refit lost its lock (taken as stale); its results were not stored.")
        for table, rows in (
            (DemandForecast, fitted.forecasts),
            (ProductNeighbour, fitted.neighbours),
            (PopularProduct, fitted.popular),
            (PredictedClv, fitted.clv),
        ):
            await session.execute(delete(table))
            for start in range(0, len(rows), INSERT_CHUNK):
                await session.execute(insert(table), rows[start : start + INSERT_CHUNK])
        await clv_service.store_cohorts(session)


async def latest_run_in(session: AsyncSession, *, status: str | None = None) -> ModelRun | None:
    """The latest run (of that status); the latest succeeded one is the fit being served."""
    statement = select(ModelRun).order_by(col(ModelRun.started_at).desc()).limit(1)
    if status is not None:
        statement = statement.where(col(ModelRun.status) == status)
    return (await session.scalars(statement)).first()


async def latest_run(database: Database, *, status: str | None = None) -> ModelRun | None:
    async with database.session() as session:
        return await latest_run_in(session, status=status)


def _next_refit_after(run: ModelRun, settings: Settings) -> int:
    """Seconds from a fit to the next scheduled one: the interval, or at most `model_refit_empty_retry_s`
    when the fit found no sales and no customers (a fresh start before the consumers caught up)."""
    found = run.summary.get("forecasts", {}).get("series", 0) or run.summary.get("clv", {}).get(
        "customers", 0
    )
    return (
        settings.model_refit_interval_s
        if found
        else min(settings.model_refit_interval_s, settings.model_refit_empty_retry_s)
    )


async def refit_on_schedule(app: FastAPI) -> None:
    """Start-up hook: refit every `model_refit_interval_s` (now if the last fit is older; sooner when the
    last fit found nothing to fit)."""
    settings: Settings = app.state.runtime.settings
    if settings.model_refit_interval_s <= 0:
        return
    database: Database = app.state.database

    async def loop() -> None:
        while True:
            last = await latest_run(database, status="succeeded")
            due = (
                as_utc(last.started_at) + timedelta(seconds=_next_refit_after(last, settings))
                if last
                else utc_now()
            )
            wait = (due - utc_now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, settings.model_refit_interval_s))
                continue
            try:
                run = await start_run(
                    database, trigger="schedule", actor=None, stale_after_s=settings.model_refit_stale_s
                )
            except Conflict:
                await asyncio.sleep(60)
                continue
            await run_refit(database, settings, run_id=run.id)

    app.state.model_refit_task = asyncio.create_task(loop(), name="model-refit")


async def stop_schedule(app: FastAPI) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "model_refit_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
