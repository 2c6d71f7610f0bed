"""The data quality report route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from product_service.common import ReadCaller
from product_service.quality import service
from product_service.quality.schemas import QualityReport
from servicekit.dependencies import SessionDep
from servicekit.errors import problem_responses

router = APIRouter(prefix="/v1/reports", tags=["data quality"])


@router.get("/data-quality", response_model=QualityReport, responses=problem_responses(401, 403, 422))
async def data_quality(
    session: SessionDep, _: ReadCaller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> QualityReport:
    """Catalog problems: missing required attributes, invalid or duplicate GTINs, near-identical names,
    prices below cost, active products with no stock anywhere. Each section gives a count and examples."""
    return await service.report(session, limit=limit)
