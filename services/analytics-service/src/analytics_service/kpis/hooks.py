"""Where model-based KPIs plug in. A provider registered here adds its KPI to GET /v1/kpis; with none
registered the KPI is absent (never a placeholder value)."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class PredictedClvProvider(Protocol):
    """Predicted customer lifetime value (e.g. BG/NBD + Gamma-Gamma fitted on `order_facts`)."""

    version: int

    async def average_predicted_clv(
        self, connection: AsyncConnection, *, as_of: date, channel: str | None, campaign: str | None
    ) -> float | None:
        """Mean predicted future value (reporting currency, major units) of the customers known at
        `as_of`, restricted to those acquired on `channel`/`campaign` when given; None if not fitted."""
        ...


_predicted_clv: PredictedClvProvider | None = None


def register_predicted_clv(provider: PredictedClvProvider | None) -> None:
    global _predicted_clv
    _predicted_clv = provider


def predicted_clv_provider() -> PredictedClvProvider | None:
    return _predicted_clv
