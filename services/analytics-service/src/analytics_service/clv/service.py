"""Predicted CLV as stored by the last refit: the hook KPIs and segments read (`predicted_clv_minor`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from analytics_service.clv.models import PredictedClv, PredictedClvCohort
from analytics_service.clv.schemas import CustomerValueRead
from analytics_service.warehouse.models import CustomerProfile
from servicekit.db import as_utc
from servicekit.errors import NotFound


async def predicted_clv_minor(
    session: AsyncSession | AsyncConnection, customer_ids: Iterable[str]
) -> dict[str, int]:
    """Predicted net spend over the CLV horizon (minor units) of each customer that has one."""
    ids = sorted(set(customer_ids))
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(col(PredictedClv.customer_id), col(PredictedClv.predicted_spend_minor)).where(
                col(PredictedClv.customer_id).in_(ids[start : start + 500])
            )
        )
        found.update({customer_id: int(value) for customer_id, value in rows.all()})
    return found


async def customer_value(session: AsyncSession, *, customer_id: str) -> CustomerValueRead:
    """Historical and predicted value of one customer; 404 when analytics has never seen them."""
    profile = await session.get(CustomerProfile, customer_id)
    if profile is None:
        raise NotFound(f"No customer {customer_id} in analytics.")
    predicted = await session.get(PredictedClv, customer_id)
    return CustomerValueRead(
        customer_id=customer_id,
        orders=profile.orders_count,
        historical_revenue_minor=profile.revenue_minor,
        predicted_spend_minor=predicted.predicted_spend_minor if predicted else None,
        expected_purchases=predicted.expected_purchases if predicted else None,
        probability_alive=predicted.probability_alive if predicted else None,
        horizon_days=predicted.horizon_days if predicted else None,
        fitted_at=predicted.fitted_at if predicted else None,
    )


async def store_cohorts(session: AsyncSession) -> None:
    """Replace `predicted_clv_cohorts` with the stored predictions summed per acquisition cohort (call in
    the refit's transaction, after `predicted_clv` is written)."""
    rows = await session.execute(
        select(
            col(CustomerProfile.first_order_at),
            col(CustomerProfile.acquisition_channel),
            col(CustomerProfile.acquisition_campaign),
            col(PredictedClv.predicted_spend_minor),
        )
        .join(CustomerProfile, col(CustomerProfile.customer_id) == col(PredictedClv.customer_id))
        .where(col(CustomerProfile.merged_into).is_(None), col(CustomerProfile.first_order_at).is_not(None))
    )
    cohorts: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for first_order_at, channel, campaign, predicted in rows.all():
        if first_order_at is None:
            continue
        cohort = cohorts[(as_utc(first_order_at).date(), channel or "", campaign or "")]
        cohort[0] += 1
        cohort[1] += int(predicted)
    await session.execute(delete(PredictedClvCohort))
    if cohorts:
        await session.execute(
            insert(PredictedClvCohort),
            [
                {
                    "first_order_day": day,
                    "acquisition_channel": channel,
                    "acquisition_campaign": campaign,
                    "customers": customers,
                    "predicted_spend_minor": predicted,
                }
                for (day, channel, campaign), (customers, predicted) in sorted(cohorts.items())
            ],
        )


class StoredPredictedClv:
    """The KPI hook (`kpis.hooks.register_predicted_clv`): the mean predicted spend over the CLV horizon
    of the customers whose first order was on or before `as_of` and who were not merged away at the latest
    fit, optionally those acquired on a channel/campaign, from the latest fit's cohort sums (a past `as_of`
    selects the customers then known, valued by today's model); None before the first fit."""

    version = 1

    async def average_predicted_clv(
        self, connection: AsyncConnection, *, as_of: date, channel: str | None, campaign: str | None
    ) -> float | None:
        statement = select(
            func.sum(col(PredictedClvCohort.predicted_spend_minor)),
            func.sum(col(PredictedClvCohort.customers)),
        ).where(col(PredictedClvCohort.first_order_day) <= as_of)
        if channel is not None:
            statement = statement.where(col(PredictedClvCohort.acquisition_channel) == channel)
        if campaign is not None:
            statement = statement.where(col(PredictedClvCohort.acquisition_campaign) == campaign)
        predicted, customers = (await connection.execute(statement)).one()
        return round(float(predicted) / float(customers) / 100, 2) if customers else None
