"""Stores' till receipts from end-of-day sales files (ecom.sale.recorded.v1, from sync-service) become POS
orders: placed like any order (order.placed, which product-service turns into a committed sale at the
store), idempotently by the order number `POS-<channel code>-<receipt id>`. A receipt with a loyalty id
goes to the customer holding that loyalty card (external id `loyalty`; created if none does); one
without goes to the store channel's walk-in customer (external id `pos-walk-in` = the channel code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import CloudEvent, parse_data
from contracts.catalog.sales import SaleRecorded
from customer_service.context import CustomerContext
from customer_service.customers.schemas import ExternalIdentity, IdentifyRequest
from customer_service.orders import service
from customer_service.orders.schemas import OrderCreate, OrderLineIn

LOYALTY_SOURCE = "loyalty"
WALK_IN_SOURCE = "pos-walk-in"
POS_CHANNEL = "pos"


def order_number(channel_code: str, receipt_id: str) -> str:
    return f"POS-{channel_code}-{receipt_id}"[:100]


def sale_handler(context: CustomerContext) -> Callable[[AsyncSession, CloudEvent], Awaitable[None]]:
    """The handler of ecom.sale.recorded.v1 (it needs the context: identifying a customer does)."""

    async def on_sale_recorded(session: AsyncSession, event: CloudEvent) -> None:
        sale = parse_data(event)
        assert isinstance(sale, SaleRecorded)
        shopper = (
            ExternalIdentity(source=LOYALTY_SOURCE, id=sale.loyalty_id)
            if sale.loyalty_id
            else ExternalIdentity(source=WALK_IN_SOURCE, id=sale.channel_code)
        )
        await service.place(
            session,
            context,
            body=OrderCreate(
                order_number=order_number(sale.channel_code, sale.receipt_id),
                customer=IdentifyRequest(external_id=shopper),
                channel=POS_CHANNEL,
                location_id=sale.store,
                currency=sale.currency,
                lines=[
                    OrderLineIn(
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        currency=sale.currency,
                    )
                    for line in sale.lines
                ],
                placed_at=sale.sold_at,
            ),
        )

    return on_sale_recorded
