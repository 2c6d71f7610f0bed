"""Kafka topic names: one topic per aggregate family, keyed by aggregate id."""

from __future__ import annotations

CUSTOMERS = "ecom.customers.v1"
ORDERS = "ecom.orders.v1"
PRODUCTS = "ecom.products.v1"
PRICES = "ecom.prices.v1"
INVENTORY = "ecom.inventory.v1"
CHANNELS = "ecom.channels.v1"
SHIPMENTS = "ecom.shipments.v1"
INBOUND = "ecom.inbound.v1"
SALES = "ecom.sales.v1"
ACTIVITY = "ecom.activity.v1"
PRIVACY = "ecom.privacy.v1"

ALL_TOPICS: tuple[str, ...] = (
    CUSTOMERS,
    ORDERS,
    PRODUCTS,
    PRICES,
    INVENTORY,
    CHANNELS,
    SHIPMENTS,
    INBOUND,
    SALES,
    ACTIVITY,
    PRIVACY,
)

TOPIC_DESCRIPTIONS: dict[str, str] = {
    CUSTOMERS: "Customer profiles: lifecycle, merges, consent, risk flags. Key: customer id.",
    ORDERS: "Orders and their status changes. Key: order id.",
    PRODUCTS: "Catalog products and variants. Key: product id.",
    PRICES: "Prices and promotions. Key: SKU.",
    INVENTORY: "Stock levels per SKU and location. Key: SKU.",
    CHANNELS: "Sales-channel sync state and drift. Key: channel id.",
    SHIPMENTS: "3PL shipment updates, normalised, and late-delivery alerts. Key: order id.",
    INBOUND: "Suppliers' inbound deliveries (purchase orders, notices) and receipts. Key: inbound id.",
    SALES: "Stores' till receipts from end-of-day sales files, to become POS orders. Key: channel id.",
    ACTIVITY: "Storefront behaviour (views, carts, checkouts). Key: session or customer id.",
    PRIVACY: "Privacy requests (erasure, export) and each service's completion. Key: request id.",
}

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic that failed events of `topic` go to."""
    return topic + DLQ_SUFFIX
