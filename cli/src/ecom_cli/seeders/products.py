"""Seed product-service: a realistic catalog with families, variants, prices, stock and suppliers.

Writes through product_service's own service functions, so attribute values are validated, GTINs carry
correct check digits, the search index is filled and every event lands in the outbox for the service
to publish when it runs. SKUs are SKU-0001, SKU-0002, … so the customer seeder's orders refer to them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ecom_cli.seeding import SeedContext, Seeder

FAKER_SEED = 2026
PRODUCTS_AT_SCALE_1 = 20
VARIANTS_PER_PRODUCT = 2
CURRENCY = "EUR"

FAMILIES: dict[str, list[dict[str, Any]]] = {
    "apparel": [
        {"code": "material", "type": "text", "required_channels": ["web", "marketplace"]},
        {
            "code": "colour",
            "type": "enum",
            "options": ["black", "white", "navy", "red", "green"],
            "required_channels": ["marketplace"],
        },
        {"code": "weight", "type": "measurement", "units": ["g", "kg"]},
        {"code": "organic", "type": "boolean"},
    ],
    "electronics": [
        {"code": "power", "type": "measurement", "units": ["W"], "required_channels": ["web", "marketplace"]},
        {"code": "wireless", "type": "boolean", "required_channels": ["marketplace"]},
        {"code": "warranty_years", "type": "number"},
    ],
    "home": [
        {"code": "material", "type": "text", "required_channels": ["web"]},
        {"code": "capacity", "type": "measurement", "units": ["ml", "l"]},
        {"code": "dishwasher_safe", "type": "boolean", "required_channels": ["marketplace"]},
    ],
}
CATEGORIES = {
    "apparel": ("Apparel", ["T-shirts", "Hoodies", "Shoes"]),
    "electronics": ("Electronics", ["Headphones", "Chargers"]),
    "home": ("Home", ["Mugs", "Lamps"]),
}
SIZES = ["S", "M", "L", "XL"]
LOCATIONS = [
    ("wh_main", "Main warehouse", "warehouse"),
    ("store_paris", "Paris store", "store"),
    ("store_berlin", "Berlin store", "store"),
]
SUPPLIERS = [
    ("acme_textiles", "Acme Textiles", 14),
    ("volt_supply", "Volt Supply", 21),
    ("casa_goods", "Casa Goods", 10),
]
SUPPLIER_FOR = {"apparel": 0, "electronics": 1, "home": 2}


async def is_empty(database_url: str) -> bool:
    from sqlalchemy import func, select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from product_service.catalog.models import Product
    from servicekit.db import Database

    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(Product))
        return not count
    except (OperationalError, ProgrammingError):
        return True
    finally:
        await database.dispose()


def _gtin(rng: random.Random) -> str:
    body = "40" + "".join(str(rng.randrange(10)) for _ in range(10))
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _attributes(family: str, rng: random.Random) -> dict[str, Any]:
    if family == "apparel":
        values: dict[str, Any] = {
            "material": rng.choice(["cotton", "organic cotton", "wool", "linen", "polyester"]),
            "colour": rng.choice(["black", "white", "navy", "red", "green"]),
            "weight": {"value": rng.randrange(150, 900), "unit": "g"},
            "organic": rng.random() < 0.3,
        }
    elif family == "electronics":
        values = {
            "power": {"value": rng.choice([5, 10, 20, 30, 65]), "unit": "W"},
            "wireless": rng.random() < 0.6,
            "warranty_years": rng.choice([1, 2, 3]),
        }
    else:
        values = {
            "material": rng.choice(["stoneware", "porcelain", "glass", "oak"]),
            "capacity": {"value": rng.choice([250, 330, 500]), "unit": "ml"},
            "dishwasher_safe": rng.random() < 0.7,
        }
    if rng.random() < 0.15:  # some products are incomplete, so completeness and quality have findings
        values.pop(next(iter(values)))
    return values


async def seed(context: SeedContext) -> str:
    from faker import Faker

    from product_service.catalog import service as catalog
    from product_service.catalog.schemas import CategoryCreate, FamilyCreate, ProductCreate, VariantCreate
    from product_service.config import Settings
    from product_service.inventory import service as inventory
    from product_service.inventory.schemas import LocationCreate, MovementCreate
    from product_service.pricing import promotions
    from product_service.pricing import service as pricing
    from product_service.pricing.schemas import PriceSet, PromotionCreate
    from product_service.suppliers import service as suppliers
    from product_service.suppliers.schemas import OfferSet, SupplierCreate
    from servicekit.db import Database

    rng = random.Random(FAKER_SEED)
    fake = Faker("en_US")
    fake.seed_instance(FAKER_SEED)
    settings = Settings(database_url=context.database_url)
    product_count = max(1, round(PRODUCTS_AT_SCALE_1 * context.scale))
    task = context.progress.add_task("catalog", total=product_count + 2)
    now = datetime.now(UTC)
    database = Database(context.database_url)
    try:
        async with database.session() as session:
            family_ids = {}
            for code, attributes in FAMILIES.items():
                family = await catalog.create_family(
                    session,
                    body=FamilyCreate.model_validate(
                        {"code": code, "title": code.title(), "attributes": attributes}
                    ),
                )
                family_ids[code] = family.id
            leaves: list[tuple[str, str]] = []
            for code, (title, children) in CATEGORIES.items():
                root = await catalog.create_category(
                    session, body=CategoryCreate(title=title, family_id=family_ids[code])
                )
                for child in children:
                    leaf = await catalog.create_category(
                        session, body=CategoryCreate(title=child, parent_id=root.id)
                    )
                    leaves.append((code, leaf.id))
            location_ids = [
                (await inventory.create_location(session, body=LocationCreate(code=c, title=t, kind=k))).id
                for c, t, k in LOCATIONS
            ]
            supplier_ids = [
                (
                    await suppliers.create_supplier(
                        session, body=SupplierCreate(code=c, title=t, default_lead_time_days=d)
                    )
                ).id
                for c, t, d in SUPPLIERS
            ]
            await inventory.set_buffer(session, channel="marketplace", safety_buffer=2)
        context.progress.advance(task)

        sku_number = 0
        for index in range(product_count):
            family_code, category_id = leaves[index % len(leaves)]
            async with database.session() as session:
                variants = []
                for size in rng.sample(SIZES, VARIANTS_PER_PRODUCT):
                    sku_number += 1
                    variants.append(
                        VariantCreate(sku=f"SKU-{sku_number:04d}", gtin=_gtin(rng), attributes={"size": size})
                    )
                values = _attributes(family_code, rng)
                noun = CATEGORIES[family_code][0].rstrip("s")
                await catalog.create_product(
                    session,
                    body=ProductCreate(
                        title=f"{fake.color_name()} {fake.word().title()} {noun}",
                        brand=fake.company(),
                        description=fake.paragraph(nb_sentences=3),
                        category_id=category_id,
                        status="active" if rng.random() < 0.85 else "draft",
                        attributes=values,
                        media_urls=[f"https://images.example.com/{sku_number:04d}-{n}.jpg" for n in range(2)],
                        variants=variants,
                    ),
                    settings=settings,
                )
                for variant in variants:
                    base = Decimal(rng.randrange(990, 12_990)) / 100
                    context.shared.setdefault("prices", {})[variant.sku] = base
                    cost = (base * Decimal(rng.uniform(0.35, 0.7))).quantize(Decimal("0.01"))
                    history = [
                        (now - timedelta(days=60), base * Decimal("1.1")),
                        (now - timedelta(days=20), base),
                    ]
                    if rng.random() < 0.2:
                        history.append((now + timedelta(days=7), base * Decimal("0.9")))
                    for effective_from, amount in history:
                        await pricing.set_price(
                            session,
                            sku=variant.sku,
                            body=PriceSet(
                                currency=CURRENCY,
                                amount=amount.quantize(Decimal("0.01")),
                                cost=cost,
                                effective_from=effective_from,
                                reason="seed",
                                source="seed",
                            ),
                            actor="seed",
                            allow_backdating=True,
                        )
                    for location_id, (_, _, kind) in zip(location_ids, LOCATIONS, strict=True):
                        quantity = rng.randrange(20, 200) if kind == "warehouse" else rng.randrange(0, 15)
                        if quantity:
                            await inventory.record_movement(
                                session,
                                body=MovementCreate(
                                    kind="receipt",
                                    sku=variant.sku,
                                    location_id=location_id,
                                    quantity=quantity,
                                    reference="seed",
                                    reason="opening stock",
                                ),
                                actor="seed",
                            )
                    await suppliers.set_offer(
                        session,
                        supplier=await suppliers.get_supplier(
                            session, supplier_id=supplier_ids[SUPPLIER_FOR[family_code]]
                        ),
                        sku=variant.sku,
                        body=OfferSet(
                            supplier_sku=f"{SUPPLIERS[SUPPLIER_FOR[family_code]][0][:4].upper()}-{variant.sku[4:]}",
                            cost=cost,
                            currency=CURRENCY,
                            min_order_quantity=rng.choice([1, 6, 12, 24]),
                            available_quantity=rng.randrange(0, 500),
                        ),
                    )
            context.progress.advance(task)

        async with database.session() as session:
            await promotions.create_promotion(
                session,
                body=PromotionCreate(
                    title="Winter apparel sale",
                    kind="percentage",
                    value=Decimal("15"),
                    category_ids=[leaves[0][1]],
                    starts_at=now - timedelta(days=1),
                    ends_at=now + timedelta(days=14),
                ),
                actor="seed",
            )
        context.progress.advance(task)
    finally:
        await database.dispose()
    return (
        f"{product_count} products, {sku_number} SKUs with prices and stock in {len(LOCATIONS)} locations, "
        f"{len(SUPPLIERS)} suppliers, 1 promotion"
    )


SEEDER = Seeder(name="catalog", service="product", is_empty=is_empty, seed=seed, order=20)
