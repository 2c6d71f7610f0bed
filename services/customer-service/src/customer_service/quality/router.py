"""Data quality across the customer base."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import col

from customer_service.customers.models import Customer
from customer_service.http import ReadCaller
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/quality", tags=["quality"])

BUCKETS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class QualitySummary(BaseModel):
    customers: int = Field(description="Active customers")
    average_score: float
    distribution: dict[str, int] = Field(description="Customers per score value (0.0, 0.2, … 1.0)")
    criteria: dict[str, int] = Field(description="Customers meeting each criterion")


@router.get("/summary", response_model=QualitySummary, responses=problem_responses(401, 403))
async def quality_summary(session: SessionDep, _: ReadCaller) -> QualitySummary:
    """The quality score distribution and how many customers meet each criterion."""
    active = col(Customer.status) == "active"
    total, average = (
        await session.execute(select(func.count(), func.avg(col(Customer.quality_score))).where(active))
    ).one()
    distribution = {f"{b:.1f}": 0 for b in BUCKETS}
    rows = await session.execute(
        select(col(Customer.quality_score), func.count()).where(active).group_by(col(Customer.quality_score))
    )
    for score, count in rows.all():
        bucket = min(BUCKETS, key=lambda b: abs(b - float(score)))
        distribution[f"{bucket:.1f}"] += int(count)
    criteria: dict[str, int] = {}
    # The criteria live in a JSON column: count them in Python, in pages, to stay portable.
    offset, page = 0, 5000
    while True:
        batch = (
            (
                await session.execute(
                    select(col(Customer.quality))
                    .where(active)
                    .order_by(col(Customer.id))
                    .offset(offset)
                    .limit(page)
                )
            )
            .scalars()
            .all()
        )
        for quality in batch:
            for name, met in (quality or {}).items():
                criteria[name] = criteria.get(name, 0) + (1 if met else 0)
        if len(batch) < page:
            break
        offset += page
    return QualitySummary(
        customers=int(total or 0),
        average_score=round(float(average or 0.0), 3),
        distribution=distribution,
        criteria=criteria,
    )
