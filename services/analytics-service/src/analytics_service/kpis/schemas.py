"""KPI API models."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class KpiValue(BaseModel):
    value: int | float | None = Field(
        description="The KPI over the range (null when undefined, e.g. no orders)"
    )
    previous: int | float | None = Field(description="The same KPI over the previous period of equal length")
    change: float | None = Field(description="value - previous")
    change_ratio: float | None = Field(description="change / |previous| (null when previous is 0 or null)")


class KpiPeriod(BaseModel):
    start: date
    end: date
    values: dict[str, int | float | None]


class KpiReport(BaseModel):
    start: date
    end: date
    previous_start: date
    previous_end: date
    granularity: str
    channel: str | None
    campaign: str | None
    currency: str = Field(description="Money KPIs are in this currency, major units")
    definitions_version: str = Field(description="Version of the definitions in docs/analytics.md")
    kpis: dict[str, KpiValue]
    series: list[KpiPeriod] = Field(description="The KPIs per day, week or month of the range")


class KpiDefinitionRead(BaseModel):
    name: str
    version: int
    unit: str
    formula: str
