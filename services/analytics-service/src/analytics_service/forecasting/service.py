"""Serving forecasts and reorder suggestions from the stored fits and the current stock."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.config import Settings
from analytics_service.fitting import data
from analytics_service.fitting.models import ModelRun
from analytics_service.fitting.service import latest_run_in
from analytics_service.forecasting.demand import DemandOutlook, days_of_cover
from analytics_service.forecasting.models import ALL_LOCATIONS, DemandForecast
from analytics_service.forecasting.reorder import SupplyTerms, suggest_reorder
from analytics_service.forecasting.schemas import (
    ForecastDay,
    ForecastRead,
    ReorderSuggestionList,
    ReorderSuggestionRead,
)
from analytics_service.forecasting.supply import SupplyLookup
from servicekit.errors import Conflict, NotFound


def demand_of(row: DemandForecast) -> DemandOutlook:
    return DemandOutlook(
        row.method,
        row.rate,
        np.asarray(row.mean, dtype=np.float64),
        np.asarray(row.median, dtype=np.float64),
        np.asarray(row.lower, dtype=np.float64),
        np.asarray(row.upper, dtype=np.float64),
        np.asarray(row.lead_quantiles, dtype=np.float64),
    )


async def _fitted_run(session: AsyncSession) -> ModelRun:
    run = await latest_run_in(session, status="succeeded")
    if run is None:
        raise Conflict("No model has been fitted yet (POST /v1/models/refit, or wait for the schedule).")
    return run


def _available(stock: dict[tuple[str, str], int], sku: str, location: str) -> int | None:
    if location == ALL_LOCATIONS:
        levels = [available for (s, _), available in stock.items() if s == sku]
        return sum(levels) if levels else None
    return stock.get((sku, location))


async def forecast(
    session: AsyncSession, *, sku: str, location: str | None, days: int, settings: Settings
) -> ForecastRead:
    """The stored forecast of `sku` at `location` (all locations when None) for `days` days."""
    location_id = location if location is not None else ALL_LOCATIONS
    row = await session.get(DemandForecast, (sku, location_id))
    if row is None and not await data.sku_known(session, sku):
        raise NotFound(f"No SKU {sku} in the catalog or the sales.")
    run = await _fitted_run(session)
    stock = await data.available_stock(session, {sku})
    available = _available(stock, sku, location_id)
    if row is None:
        start = run.data_until + timedelta(days=1)
        return ForecastRead(
            sku=sku,
            location_id=location_id,
            method="no_sales",
            daily_rate=0.0,
            interval_level=settings.forecast_interval_level,
            history_start=None,
            history_end=run.data_until,
            fitted_at=run.finished_at or run.started_at,
            run_id=run.id,
            available=available,
            days_of_cover=None,
            days=[
                ForecastDay(day=start + timedelta(days=i), mean=0.0, median=0.0, lower=0.0, upper=0.0)
                for i in range(days)
            ],
        )
    demand = demand_of(row)
    horizon = min(days, len(row.mean))
    start = row.history_end + timedelta(days=1)
    return ForecastRead(
        sku=sku,
        location_id=location_id,
        method=row.method,
        daily_rate=row.rate,
        interval_level=row.interval_level,
        history_start=row.history_start,
        history_end=row.history_end,
        fitted_at=row.fitted_at,
        run_id=row.run_id,
        available=available,
        days_of_cover=days_of_cover(demand, available) if available is not None else None,
        days=[
            ForecastDay(
                day=start + timedelta(days=i),
                mean=row.mean[i],
                median=row.median[i],
                lower=row.lower[i],
                upper=row.upper[i],
            )
            for i in range(horizon)
        ],
    )


async def reorder_suggestions(
    session: AsyncSession, *, location: str | None, limit: int, settings: Settings, supply: SupplyLookup
) -> ReorderSuggestionList:
    """SKUs to order now at `location` (all locations when None), the most urgent first."""
    run = await _fitted_run(session)
    location_id = location if location is not None else ALL_LOCATIONS
    rows = (
        await session.scalars(
            select(DemandForecast).where(
                col(DemandForecast.location_id) == location_id, col(DemandForecast.rate) > 0
            )
        )
    ).all()
    stock = await data.available_stock(session, {row.sku for row in rows})
    warnings = (
        [supply.problem + f"; the default lead time of {settings.default_lead_time_days} days was used"]
        if supply.problem
        else []
    )
    unjudged = 0
    items: list[ReorderSuggestionRead] = []
    for row in rows:
        available = _available(stock, row.sku, location_id)
        if available is None:
            unjudged += 1
            continue
        terms = supply.terms.get(row.sku)
        source = "supplier" if terms else "default"
        terms = terms or SupplyTerms(lead_time_days=settings.default_lead_time_days)
        suggestion = suggest_reorder(
            demand_of(row),
            available=available,
            terms=terms,
            review_days=settings.reorder_review_days,
            service_level=row.service_level,
        )
        if not suggestion.reorder:
            continue
        items.append(
            ReorderSuggestionRead(
                sku=row.sku,
                location_id=location_id,
                quantity=suggestion.quantity,
                available=available,
                days_of_cover=suggestion.days_of_cover,
                stockout_before_arrival=suggestion.stockout_before_arrival,
                reorder_point=round(suggestion.reorder_point, 3),
                order_up_to=round(suggestion.order_up_to, 3),
                expected_lead_time_demand=round(suggestion.expected_lead_time_demand, 3),
                lead_time_days=terms.lead_time_days,
                min_order_quantity=terms.min_order_quantity,
                supplier_id=terms.supplier_id,
                supply_terms=source,
                reason=suggestion.reason,
            )
        )
    if unjudged:
        warnings.append(f"{unjudged} SKUs with a forecast have no stock record here and were not judged")
    items.sort(key=lambda item: (not item.stockout_before_arrival, item.days_of_cover or 0.0, item.sku))
    return ReorderSuggestionList(
        items=items[:limit],
        fitted_at=run.finished_at or run.started_at,
        service_level=settings.reorder_service_level,
        review_days=settings.reorder_review_days,
        warnings=warnings,
    )
