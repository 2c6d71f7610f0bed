"""The KPI definitions: one name, one version, one formula each (docs/analytics.md explains them)."""

from __future__ import annotations

from dataclasses import dataclass

DEFINITIONS_VERSION = "2"


@dataclass(frozen=True)
class KpiDefinition:
    name: str
    version: int
    unit: str  # count, ratio, money
    formula: str


DEFINITIONS: tuple[KpiDefinition, ...] = (
    KpiDefinition("sessions", 1, "count", "visits started in the period (day of a session's first event)"),
    KpiDefinition("conversion_rate", 1, "ratio", "sessions with Order Completed / sessions"),
    KpiDefinition(
        "cart_abandonment_rate", 1, "ratio", "1 - sessions with Order Completed / sessions with Product Added"
    ),
    KpiDefinition("orders", 1, "count", "orders placed in the period, not cancelled or refunded"),
    KpiDefinition("revenue", 1, "money", "sum of those orders' totals (after order discounts)"),
    KpiDefinition("average_order_value", 1, "money", "revenue / orders"),
    KpiDefinition("new_customers", 1, "count", "orders that are their customer's first counted order"),
    KpiDefinition("returning_customer_orders", 1, "count", "orders - new_customers"),
    KpiDefinition(
        "repeat_purchase_rate",
        1,
        "ratio",
        "customers with 2+ counted orders in the period / customers with 1+ (whole range only)",
    ),
    KpiDefinition("marketing_spend", 1, "money", "spend recorded for the period's days (channel/campaign)"),
    KpiDefinition("customer_acquisition_cost", 1, "money", "marketing_spend / new_customers"),
    KpiDefinition(
        "historical_clv",
        1,
        "money",
        "revenue of counted orders to date / new customers to date, at the range's end; with a channel or "
        "campaign filter, revenue attributed there / customers acquired there (whole range only)",
    ),
    KpiDefinition(
        "cost_of_goods",
        2,
        "money",
        "sum over counted order lines of quantity x the SKU's unit cost in effect when the order was placed "
        "(before its first known cost, that cost; 0 when none is known)",
    ),
    KpiDefinition(
        "expenses", 1, "money", "recorded expenses of the period's days (not with a channel filter)"
    ),
    KpiDefinition("net_profit", 1, "money", "revenue - cost_of_goods - marketing_spend - expenses"),
    KpiDefinition("net_profit_margin", 1, "ratio", "net_profit / revenue"),
)
KPI_NAMES: tuple[str, ...] = tuple(d.name for d in DEFINITIONS)
