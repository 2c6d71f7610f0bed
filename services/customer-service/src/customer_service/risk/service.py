"""Risk rules over orders and profiles; each flag records its reason and emits customer.flagged."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event, uuid7
from contracts.catalog.customers import CustomerFlagged
from customer_service.customers import service as customers
from customer_service.customers.models import Customer, CustomerIdentifier
from customer_service.orders.models import Order
from customer_service.risk.models import RiskFlag
from servicekit.events import outbox

VELOCITY_ORDERS = 5
VELOCITY_WINDOW = timedelta(hours=1)
MAX_SHIPPING_ADDRESSES = 5
HIGH_FIRST_ORDER_TOTAL = Decimal("1000")
SHARED_IDENTIFIER_CUSTOMERS = 3


async def _flag(
    session: AsyncSession, *, customer_id: str, rule: str, reason: str, order_id: str | None = None
) -> RiskFlag | None:
    """Raise a flag once per rule and subject (customer, or order for order rules)."""
    dedupe_key = f"{rule}:{order_id or customer_id}"
    existing = (
        await session.execute(select(RiskFlag).where(col(RiskFlag.dedupe_key) == dedupe_key))
    ).scalar_one_or_none()
    if existing is not None:
        return None
    flag = RiskFlag(
        id=str(uuid7()),
        customer_id=customer_id,
        order_id=order_id,
        rule=rule,
        reason=reason,
        dedupe_key=dedupe_key,
        created_at=customers.now(),
    )
    session.add(flag)
    await session.flush()
    await outbox.add(
        session,
        build_event(
            "ecom.customer.flagged.v1",
            CustomerFlagged(
                flag_id=flag.id,
                customer_id=customer_id,
                rule=rule,
                reason=reason,
                order_id=order_id,
                flagged_at=flag.created_at,
            ),
            subject=customer_id,
        ),
    )
    return flag


async def evaluate_order(session: AsyncSession, *, order: Order) -> list[RiskFlag]:
    """Order velocity, billing/shipping country mismatch, high first order."""
    flags: list[RiskFlag | None] = []
    since = customers.aware(order.placed_at) - VELOCITY_WINDOW
    recent = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(col(Order.customer_id) == order.customer_id, col(Order.placed_at) >= since)
    )
    if int(recent or 0) >= VELOCITY_ORDERS:
        flags.append(
            await _flag(
                session,
                customer_id=order.customer_id,
                order_id=order.id,
                rule="order_velocity",
                reason=f"{recent} orders within {int(VELOCITY_WINDOW.total_seconds() // 60)} minutes",
            )
        )
    if order.billing_country and order.shipping_country and order.billing_country != order.shipping_country:
        flags.append(
            await _flag(
                session,
                customer_id=order.customer_id,
                order_id=order.id,
                rule="country_mismatch",
                reason=f"billing country {order.billing_country} differs from shipping country "
                f"{order.shipping_country}",
            )
        )
    previous = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(col(Order.customer_id) == order.customer_id, col(Order.id) != order.id)
    )
    if not previous and Decimal(order.total) >= HIGH_FIRST_ORDER_TOTAL:
        flags.append(
            await _flag(
                session,
                customer_id=order.customer_id,
                order_id=order.id,
                rule="high_first_order",
                reason=f"first order totals {order.total} {order.currency} "
                f"(threshold {HIGH_FIRST_ORDER_TOTAL})",
            )
        )
    return [f for f in flags if f is not None]


def profile_rules(contact: customers.Contact, *, most_sharing_a_phone: int) -> list[tuple[str, str]]:
    """The profile rules (rule, reason) a profile breaks, given the most customers holding one of its
    phone numbers (itself included)."""
    broken: list[tuple[str, str]] = []
    shipping = [a for a in contact.addresses if a.get("kind") == "shipping"]
    if len(shipping) >= MAX_SHIPPING_ADDRESSES:
        broken.append(
            (
                "many_shipping_addresses",
                f"{len(shipping)} shipping addresses (threshold {MAX_SHIPPING_ADDRESSES})",
            )
        )
    if most_sharing_a_phone >= SHARED_IDENTIFIER_CUSTOMERS:
        broken.append(
            (
                "shared_identifier",
                f"a phone number is shared by {most_sharing_a_phone} customers "
                f"(threshold {SHARED_IDENTIFIER_CUSTOMERS})",
            )
        )
    return broken


async def evaluate_profile(
    session: AsyncSession, *, customer: Customer, contact: customers.Contact
) -> list[RiskFlag]:
    """Many shipping addresses; a phone or email shared by many customers."""
    mine = select(col(CustomerIdentifier.blind_index)).where(
        col(CustomerIdentifier.customer_id) == customer.id, col(CustomerIdentifier.kind) == customers.PHONE
    )
    shared = await session.execute(
        select(func.count(func.distinct(col(CustomerIdentifier.customer_id))))
        .where(col(CustomerIdentifier.kind) == customers.PHONE, col(CustomerIdentifier.blind_index).in_(mine))
        .group_by(col(CustomerIdentifier.blind_index))
    )
    most = max((int(n) for (n,) in shared.all()), default=0)
    flags = [
        await _flag(session, customer_id=customer.id, rule=rule, reason=reason)
        for rule, reason in profile_rules(contact, most_sharing_a_phone=most)
    ]
    return [f for f in flags if f is not None]


async def list_flags(
    session: AsyncSession, *, customer_id: str | None, rule: str | None, after_id: str | None, limit: int
) -> list[RiskFlag]:
    query = select(RiskFlag)
    if customer_id:
        query = query.where(col(RiskFlag.customer_id) == customer_id)
    if rule:
        query = query.where(col(RiskFlag.rule) == rule)
    if after_id:
        query = query.where(col(RiskFlag.id) < after_id)
    return list((await session.execute(query.order_by(col(RiskFlag.id).desc()).limit(limit + 1))).scalars())
