"""The events customer-service consumes: one table from consumer name to its handlers."""

from __future__ import annotations

from customer_service.context import CustomerContext
from customer_service.orders.backorders import on_backorder_expected, on_stock_backordered
from customer_service.orders.pos_sales import sale_handler
from customer_service.orders.shipments import on_shipment_updated
from servicekit.events import ConsumerSpec


def consumers(context: CustomerContext) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            name="customer-service.inventory",
            handlers={
                "ecom.stock.backordered.v1": on_stock_backordered,
                "ecom.stock.backorder_expected.v1": on_backorder_expected,
            },
        ),
        ConsumerSpec(
            name="customer-service.shipments",
            handlers={"ecom.shipment.updated.v1": on_shipment_updated},
        ),
        ConsumerSpec(
            name="customer-service.sales",
            handlers={"ecom.sale.recorded.v1": sale_handler(context)},
        ),
    ]
