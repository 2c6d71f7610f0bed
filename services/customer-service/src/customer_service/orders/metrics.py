"""Order counters on /metrics, incremented when the transaction that placed an order commits."""

from __future__ import annotations

from prometheus_client import Counter

ORDERS = Counter("orders_total", "Orders placed, by sales channel", ["channel"])
ORDER_REVENUE = Counter(
    "order_revenue_total",
    "Totals of orders placed, in major units of their currency, by sales channel",
    ["channel", "currency"],
)
