"""Reorder suggestions from a demand model, the stock position and the supplier's terms.

Policy (s, S) reviewed every `review_days`: the reorder point s is the `service_level` quantile of the
demand over the supplier's lead time (what can sell before an order placed now arrives); the order-up-to
level S is the same quantile over lead time + review period. When the stock position (available + on
order) is at or below s, the suggestion is S - position, raised to the minimum order quantity and
rounded up to the order multiple.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analytics_service.forecasting.demand import DemandOutlook, days_of_cover


@dataclass(frozen=True)
class SupplyTerms:
    """What it takes to get more of a SKU."""

    lead_time_days: int
    min_order_quantity: int = 1
    order_multiple: int = 1
    supplier_id: str | None = None


@dataclass(frozen=True)
class ReorderSuggestion:
    reorder: bool
    quantity: int
    reorder_point: float
    order_up_to: float
    position: float
    expected_lead_time_demand: float
    days_of_cover: float | None
    stockout_before_arrival: bool
    reason: str


def suggest_reorder(
    demand: DemandOutlook,
    *,
    available: float,
    on_order: float = 0.0,
    terms: SupplyTerms,
    review_days: int = 7,
    service_level: float = 0.95,
) -> ReorderSuggestion:
    """Whether to order now and how much (see the module docstring); the quantiles are those of the
    outlook, computed at `service_level` (named in the reason)."""
    lead = max(terms.lead_time_days, 0)
    position = available + on_order
    expected_lead = float(demand.forecast(lead).sum()) if lead else 0.0
    reorder_point = demand.demand_quantile(lead) if lead else 0.0
    order_up_to = max(demand.demand_quantile(lead + max(review_days, 1)), reorder_point)
    cover = days_of_cover(demand, available)
    stockout = cover is not None and cover < lead
    if demand.rate <= 0 or position > reorder_point:
        reason = (
            "no demand expected"
            if demand.rate <= 0
            else f"stock position {position:g} covers the {lead}-day lead time demand ({reorder_point:.1f} "
            f"at {service_level:.0%} service level)"
        )
        return ReorderSuggestion(
            False, 0, reorder_point, order_up_to, position, expected_lead, cover, stockout, reason
        )
    needed = max(order_up_to - position, 0.0)
    quantity = max(math.ceil(needed), terms.min_order_quantity, 1)
    multiple = max(terms.order_multiple, 1)
    rounded = math.ceil(quantity / multiple) * multiple
    reason = (
        f"stock position {position:g} is at or below the reorder point {reorder_point:.1f} "
        f"({lead}-day lead time at {service_level:.0%} service level); order up to {order_up_to:.1f}"
    )
    if terms.min_order_quantity > math.ceil(needed):
        reason += f", raised to the minimum order quantity {terms.min_order_quantity}"
    if rounded != quantity:
        reason += f", rounded up to a multiple of {multiple}"
    quantity = rounded
    return ReorderSuggestion(
        True, quantity, reorder_point, order_up_to, position, expected_lead, cover, stockout, reason
    )
