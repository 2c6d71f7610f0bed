"""Predicted CLV as stored by the last refit: the hook KPIs and segments read (`predicted_clv_minor`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.clv.models import PredictedClv
from analytics_service.clv.schemas import CustomerValueRead
from analytics_service.warehouse.models import CustomerProfile
from servicekit.errors import NotFound


async def predicted_clv_minor(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, int]:
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
