"""Seed customer-service: a realistic customer base with orders, consents and deliberate near-duplicates.

Writes through customer_service's own service functions, so PII is encrypted, blind indexes and
blocking keys are written, duplicates are detected (and near-identical ones merged), and every event
lands in the outbox for the service to publish when it runs.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ecom_cli.seeders import shop_history
from ecom_cli.seeders.shop_history import CURRENCY
from ecom_cli.seeding import SeedContext, Seeder

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from customer_service.context import CustomerContext
    from servicekit.db import Database

FAKER_SEED = 4321
CUSTOMERS_AT_SCALE_1 = 150
DUPLICATE_SHARE = 0.12
BATCH = 50
LOCALES = {"fr_FR": "FR", "de_DE": "DE", "en_GB": "GB", "es_ES": "ES", "it_IT": "IT", "nl_NL": "NL"}
PURPOSES = ["email_marketing", "sms", "personalisation", "analytics", "third_party_sharing"]


async def is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from customer_service.customers.models import Customer
    from servicekit.db import Database

    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(Customer))
        return not count
    except (OperationalError, ProgrammingError):
        return True
    finally:
        await database.dispose()


def _phone(rng: random.Random, region: str) -> str | None:
    import phonenumbers

    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return None
    digits = str(example.national_number)
    for _ in range(5):
        candidate = digits[:-4] + f"{rng.randrange(10_000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    return None


def _profile(fake: Any, rng: random.Random, country: str) -> dict[str, Any]:
    first, last = fake.first_name(), fake.last_name()
    local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
    profile: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "emails": [
            {
                "address": f"{local}{rng.randrange(100)}@{fake.free_email_domain()}",
                "verified": rng.random() < 0.6,
            }
        ],
        "country": country,
        "locale": fake.locale().replace("_", "-") if rng.random() < 0.3 else None,
        "tags": rng.sample(["vip", "newsletter", "b2b", "wholesale", "loyalty"], k=rng.randrange(3)),
        "attributes": {"segment": rng.choice(["student", "family", "professional", "retired"])},
    }
    phone = _phone(rng, country)
    if phone and rng.random() < 0.8:
        profile["phones"] = [{"number": phone, "verified": rng.random() < 0.5}]
    if rng.random() < 0.85:
        profile["addresses"] = [
            {
                "kind": "shipping",
                "line1": fake.street_address(),
                "city": fake.city(),
                "postcode": fake.postcode(),
                "country": country,
                "verified": rng.random() < 0.4,
            }
        ]
    if rng.random() < 0.5:
        profile["birthday"] = (date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))).isoformat()
    return profile


def _near_duplicate(rng: random.Random, original: dict[str, Any]) -> dict[str, Any]:
    """The same person typed again: a typo or transposition, another email, reformatted or missing fields."""
    copy = {k: v for k, v in original.items() if k not in ("tags", "attributes")}
    first = str(copy["first_name"])
    kind = rng.choice(["typo", "transpose", "new_email", "missing"])
    if kind == "typo" and len(first) > 3:
        i = rng.randrange(1, len(first) - 1)
        copy["first_name"] = first[:i] + rng.choice("aeiou") + first[i + 1 :]
    elif kind == "transpose" and len(first) > 3:
        i = rng.randrange(1, len(first) - 2)
        copy["first_name"] = first[:i] + first[i + 1] + first[i] + first[i + 2 :]
    if kind in ("typo", "transpose", "new_email"):
        local, _, domain = copy["emails"][0]["address"].partition("@")
        copy["emails"] = [{"address": f"{local}.shop@{domain}"}]
    else:
        copy.pop("emails", None)
    if copy.get("phones"):
        copy["phones"] = [{"number": copy["phones"][0]["number"].replace(" ", "")}]
    if kind == "missing":
        copy.pop("birthday", None)
    return copy


async def _create(session: AsyncSession, context: CustomerContext, data: dict[str, Any]) -> str | None:
    from customer_service.customers import service
    from customer_service.customers.schemas import CustomerCreate
    from servicekit.errors import ServiceError

    try:
        customer = await service.create(
            session, context, data=CustomerCreate.model_validate(data), source="seed"
        )
    except ServiceError:
        return None  # Faker sometimes invents a postcode or phone our validation refuses: skip that one
    return customer.id if customer.status == "active" else customer.merged_into_id


async def _place_history(
    context: SeedContext, database: Database, domain: CustomerContext, customer_ids: list[str]
) -> int:
    """The orders of the shop's planned history (seasonal, long-tailed), each by one of the customers;
    their ids go to the analytics seeder, whose tracked purchases name them."""
    from customer_service.orders import service as orders
    from customer_service.orders.schemas import OrderCreate, OrderLineIn, StatusChange

    history = shop_history.plan(context.scale, prices=context.shared.get("prices"))
    placed: dict[str, tuple[str, str]] = {}
    task = context.progress.add_task("orders", total=len(history.orders))
    for start in range(0, len(history.orders), BATCH):
        async with database.session() as session:
            for planned in history.orders[start : start + BATCH]:
                customer_id = customer_ids[planned.customer % len(customer_ids)]
                body = OrderCreate(
                    order_number=planned.number,
                    customer_id=customer_id,
                    channel=planned.channel,
                    location_id=None,
                    currency=CURRENCY,
                    lines=[
                        OrderLineIn(sku=sku, quantity=n, unit_price=history.prices[sku], currency=CURRENCY)
                        for sku, n in planned.lines
                    ],
                    placed_at=planned.placed_at,
                )
                order, _ = await orders.place(session, domain, body=body)
                for status in planned.statuses:
                    shipped = status == "shipped"
                    await orders.change_status(
                        session,
                        order=order,
                        change=StatusChange(
                            status=status,
                            carrier="DHL" if shipped else None,
                            tracking_number=f"JD{len(placed):09d}" if shipped else None,
                        ),
                    )
                placed[planned.number] = (order.id, customer_id)
                context.progress.advance(task)
    context.shared["orders"] = placed
    return len(placed)


async def seed(context: SeedContext) -> str:
    from faker import Faker

    from customer_service.config import Settings
    from customer_service.consent import service as consent
    from customer_service.consent.schemas import ConsentChange
    from customer_service.context import CustomerContext
    from customer_service.customers import service as customers
    from servicekit.db import Database

    rng = random.Random(FAKER_SEED)
    fakers = {locale: Faker(locale) for locale in LOCALES}
    for fake in fakers.values():
        fake.seed_instance(FAKER_SEED)
    domain = CustomerContext.from_settings(Settings(database_url=context.database_url))
    total = max(1, int(CUSTOMERS_AT_SCALE_1 * context.scale))
    task = context.progress.add_task("customers", total=total)
    database = Database(context.database_url)
    created: list[dict[str, Any]] = []
    counts = {"customers": 0, "near_duplicates": 0, "orders": 0}
    customer_ids: list[str] = []
    try:
        done = 0
        while done < total:
            async with database.session() as session:
                for _ in range(min(BATCH, total - done)):
                    done += 1
                    context.progress.advance(task)
                    if created and rng.random() < DUPLICATE_SHARE:
                        data = _near_duplicate(rng, rng.choice(created))
                        counts["near_duplicates"] += 1
                    else:
                        locale = rng.choice(list(LOCALES))
                        data = _profile(fakers[locale], rng, LOCALES[locale])
                        created.append(data)
                    customer_id = await _create(session, domain, data)
                    if customer_id is None:
                        continue
                    counts["customers"] += 1
                    if customer_id not in customer_ids:
                        customer_ids.append(customer_id)
                    if rng.random() < 0.5:
                        customer = await customers.get(session, customer_id=customer_id)
                        await consent.record(
                            session,
                            domain,
                            customer=customer,
                            change=ConsentChange(
                                purpose=rng.choice(PURPOSES),
                                status=rng.choice(["granted", "withdrawn"]),
                                source="seed",
                            ),
                        )
        if customer_ids:
            counts["orders"] = await _place_history(context, database, domain, customer_ids)
    finally:
        await database.dispose()
    return (
        f"{counts['customers']} customers ({counts['near_duplicates']} deliberate near-duplicates), "
        f"{counts['orders']} orders"
    )


SEEDER = Seeder(name="customers", service="customer", is_empty=is_empty, seed=seed, order=30)
