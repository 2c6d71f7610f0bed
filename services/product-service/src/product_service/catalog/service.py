"""Catalog rules: families, categories, products and variants. Functions flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import build_event
from contracts.catalog.products import (
    ProductArchived,
    ProductCreated,
    ProductDetails,
    ProductUpdated,
    VariantFacts,
)
from product_service.catalog import repository, search
from product_service.catalog.attributes import attribute_errors, completeness, definitions_of
from product_service.catalog.models import AttributeFamily, Category, Product, Variant
from product_service.catalog.schemas import (
    AttributeDefinition,
    CategoryCreate,
    CategoryNode,
    ChannelCompleteness,
    CompletenessEntry,
    FamilyChangeImpact,
    FamilyCreate,
    FamilyUpdate,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    VariantCreate,
    VariantRead,
)
from product_service.common import new_id, utc_now
from product_service.config import Settings
from servicekit.db import Database
from servicekit.errors import Conflict, NotFound, PreconditionFailed, UnprocessableEntity
from servicekit.events import outbox
from servicekit.http.concurrency import check_if_match

MAX_CATEGORY_DEPTH = 20
REPORT_BATCH = 500
MAX_FAMILY_CONFLICT_EXAMPLES = 5


# --- families and categories -------------------------------------------------------------------


async def create_family(session: AsyncSession, *, body: FamilyCreate) -> AttributeFamily:
    """A new attribute family; 409 if its code is taken."""
    if await repository.family_by_code(session, body.code) is not None:
        raise Conflict(f"An attribute family with code {body.code!r} exists.")
    family = AttributeFamily(
        id=new_id(),
        code=body.code,
        title=body.title,
        attributes=[attribute.model_dump(exclude_none=True) for attribute in body.attributes],
        created_at=utc_now(),
    )
    session.add(family)
    await session.flush()
    return family


async def get_family(session: AsyncSession, *, family_id: str) -> AttributeFamily:
    family = await repository.get_family(session, family_id)
    if family is None:
        raise NotFound(f"No attribute family {family_id}.")
    return family


async def update_family(
    session: AsyncSession,
    *,
    family_id: str,
    changes: FamilyUpdate,
    if_match: str | None,
    settings: Settings,
) -> tuple[AttributeFamily, FamilyChangeImpact]:
    """Change a family's title or attribute definitions; 428 without If-Match, 412 when stale.

    Every product of the family is checked against the new definitions first: if any product's current
    values would no longer fit (an attribute removed, an enum option or unit dropped, a type changed),
    nothing changes and the answer is 409 naming how many products are in the way. Otherwise the family
    changes and completeness, which is derived from it, changes with it for every product; the impact
    (products whose completeness changed, and per channel those now below its threshold) is returned."""
    family = await repository.family_for_update(session, family_id)
    if family is None:
        raise NotFound(f"No attribute family {family_id}.")
    check_if_match(if_match, family.version)
    values: dict[str, Any] = {}
    if changes.title is not None and changes.title != family.title:
        values["title"] = changes.title
    old_definitions = definitions_of(family.attributes)
    new_definitions = old_definitions
    if changes.attributes is not None:
        attributes = [attribute.model_dump(exclude_none=True) for attribute in changes.attributes]
        if attributes != family.attributes:
            values["attributes"] = attributes
            new_definitions = list(changes.attributes)
    moved: list[str] = []  # products (not archived) whose completeness the change moves
    if "attributes" in values:
        impact, moved = await _family_change_impact(
            session, family.id, old_definitions, new_definitions, settings
        )
    else:
        products = await repository.count_family_products(session, family.id)
        impact = FamilyChangeImpact(products=products, completeness_changed=0, now_below_threshold={})
    if not values:
        return family, impact
    expected = family.version
    if not await repository.update_family_if_version(
        session, family.id, expected_version=expected, values=values, now=utc_now()
    ):
        raise PreconditionFailed("The family was changed by someone else; read it again and retry.")
    await session.refresh(family)
    repository.forget_family(family.id)
    # Reads in this process cache families: drop it again once the change is visible to them.
    sa_event.listen(
        session.sync_session, "after_commit", lambda _: repository.forget_family(family_id), once=True
    )
    # Completeness is part of the product's event: channels (sync-service's listings) publish or withdraw
    # a product by it, so each product it moved is announced with its new completeness. The product's own
    # version does not change (its fields did not): consumers apply an event of the version they hold.
    for start in range(0, len(moved), REPORT_BATCH):
        for product in await repository.products_by_ids(session, moved[start : start + REPORT_BATCH]):
            # Completeness is not in the search document: nothing to reindex.
            await _emit_product_change(session, product, ["completeness"], reindex=False)
    return family, impact


async def _family_change_impact(
    session: AsyncSession,
    family_id: str,
    old: list[AttributeDefinition],
    new: list[AttributeDefinition],
    settings: Settings,
) -> tuple[FamilyChangeImpact, list[str]]:
    """What the new definitions do to the family's products, and the ids of those (not archived) whose
    completeness they change; 409 if any product's values would not fit."""
    products = 0
    changed = 0
    below: dict[str, int] = {}
    invalid = 0
    examples: list[str] = []
    moved: list[str] = []
    after: str | None = None
    while True:
        rows = await repository.family_products(session, family_id, after_id=after, limit=REPORT_BATCH)
        for row in rows:
            products += 1
            errors = attribute_errors(row.attributes, new)
            if errors:
                invalid += 1
                if len(examples) < MAX_FAMILY_CONFLICT_EXAMPLES:
                    examples.append(f"product {row.id}: {'; '.join(errors)}"[:500])
                continue
            before_ratios = {c.channel: c.ratio for c in completeness(row.attributes, old)}
            after_ratios = {c.channel: c.ratio for c in completeness(row.attributes, new)}
            if before_ratios != after_ratios:
                changed += 1
            if row.status == "archived":
                continue
            if before_ratios != after_ratios:
                moved.append(row.id)
            for channel in row.channels:
                threshold = settings.threshold_for(channel)
                if before_ratios.get(channel, 1.0) >= threshold > after_ratios.get(channel, 1.0):
                    below[channel] = below.get(channel, 0) + 1
        if len(rows) < REPORT_BATCH:
            break
        after = rows[-1].id
    if invalid:
        raise Conflict(
            f"The change would make the attribute values of {invalid} product(s) of this family invalid; "
            "change or clear those values first. For example: " + " | ".join(examples),
            extra={"products_affected": invalid, "examples": examples},
        )
    return (
        FamilyChangeImpact(products=products, completeness_changed=changed, now_below_threshold=below),
        moved,
    )


async def create_category(session: AsyncSession, *, body: CategoryCreate) -> Category:
    """A new category under `parent_id` (or a root); 422 if the parent or family does not exist."""
    if body.parent_id is not None and await repository.get_category(session, body.parent_id) is None:
        raise UnprocessableEntity(f"No parent category {body.parent_id}.")
    if body.family_id is not None and await repository.get_family(session, body.family_id) is None:
        raise UnprocessableEntity(f"No attribute family {body.family_id}.")
    category = Category(
        id=new_id(),
        parent_id=body.parent_id,
        title=body.title,
        family_id=body.family_id,
        created_at=utc_now(),
    )
    session.add(category)
    await session.flush()
    return category


async def get_category(session: AsyncSession, *, category_id: str) -> Category:
    category = await repository.get_category(session, category_id)
    if category is None:
        raise NotFound(f"No category {category_id}.")
    return category


async def category_tree(session: AsyncSession) -> list[CategoryNode]:
    """Every category as a tree of roots and children."""
    categories = await repository.all_categories(session)
    nodes = {c.id: CategoryNode(id=c.id, title=c.title, family_id=c.family_id) for c in categories}
    roots: list[CategoryNode] = []
    for category in categories:
        node = nodes[category.id]
        if category.parent_id is not None and category.parent_id in nodes:
            nodes[category.parent_id].children.append(node)
        else:
            roots.append(node)
    return roots


async def subtree_ids(session: AsyncSession, *, category_id: str) -> list[str]:
    """The category and all its descendants."""
    categories = await repository.all_categories(session)
    children: dict[str | None, list[str]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category.id)
    result, stack = [], [category_id]
    while stack:
        current = stack.pop()
        result.append(current)
        stack.extend(children.get(current, []))
    return result


async def family_for_category(session: AsyncSession, category_id: str | None) -> AttributeFamily | None:
    """The family of the category or of its nearest ancestor that has one, for a product write (locked
    against concurrent family edits); 422 for an unknown category."""
    if category_id is None:
        return None
    current: str | None = category_id
    for _ in range(MAX_CATEGORY_DEPTH):
        if current is None:
            return None
        category = await repository.get_category(session, current)
        if category is None:
            raise UnprocessableEntity(f"No category {current}.")
        if category.family_id is not None:
            return await repository.family_for_product_write(session, category.family_id)
        current = category.parent_id
    return None


# --- products ------------------------------------------------------------------------------------


def _definitions(family: AttributeFamily | None) -> list[AttributeDefinition]:
    return definitions_of(family.attributes) if family is not None else []


_READ_DEFINITIONS: dict[str, tuple[list[dict[str, Any]], list[AttributeDefinition]]] = {}


def _read_definitions(family: AttributeFamily | None) -> list[AttributeDefinition]:
    """`_definitions` for the read path, parsed once per family attribute list: a changed family is a
    new object with a new list, so the list's identity says whether the parsed copy is still good."""
    if family is None:
        return []
    cached = _READ_DEFINITIONS.get(family.id)
    if cached is not None and cached[0] is family.attributes:
        return cached[1]
    definitions = definitions_of(family.attributes)
    if len(_READ_DEFINITIONS) >= repository.FAMILY_CACHE_SIZE:
        _READ_DEFINITIONS.clear()
    _READ_DEFINITIONS[family.id] = (family.attributes, definitions)
    return definitions


def _check_attributes(values: dict[str, Any], definitions: list[AttributeDefinition]) -> None:
    errors = attribute_errors(values, definitions)
    if errors:
        raise UnprocessableEntity(
            "Attribute values do not fit the product's family: " + "; ".join(errors),
            extra={"attribute_errors": errors},
        )


def _check_publishable(
    channels: Sequence[str],
    values: dict[str, Any],
    definitions: list[AttributeDefinition],
    settings: Settings,
) -> None:
    ratios = {c.channel: c for c in completeness(values, definitions)}
    too_low = []
    for channel in channels:
        entry = ratios.get(channel)
        ratio = entry.ratio if entry is not None else 1.0
        if ratio < settings.threshold_for(channel):
            too_low.append(f"{channel} ({ratio:.0%} < {settings.threshold_for(channel):.0%})")
    if too_low:
        raise UnprocessableEntity(
            "The product is below the completeness threshold of: " + ", ".join(too_low),
        )


async def _category_path(session: AsyncSession, category_id: str | None) -> list[str]:
    """The category and its ancestors, nearest first."""
    path: list[str] = []
    current = category_id
    while current is not None and len(path) < MAX_CATEGORY_DEPTH:
        category = await repository.get_category(session, current)
        if category is None:
            break
        path.append(category.id)
        current = category.parent_id
    return path


async def channel_details(
    session: AsyncSession, product: Product, variants: Sequence[Variant | VariantCreate]
) -> ProductDetails:
    """The product as channels show it, carried by its events (sync-service builds listings from it)."""
    family = await repository.cached_family(session, product.family_id) if product.family_id else None
    ratios = completeness(product.attributes, _read_definitions(family))
    return ProductDetails(
        title=product.title,
        brand=product.brand,
        description=product.description,
        attributes=product.attributes,
        media_urls=product.media_urls,
        channels=product.channels,
        category_path=await _category_path(session, product.category_id),
        completeness={c.channel: c.ratio for c in ratios},
        variants=[VariantFacts(sku=v.sku, gtin=v.gtin, attributes=v.attributes) for v in variants],
    )


async def _check_new_variants(session: AsyncSession, variants: Sequence[VariantCreate]) -> None:
    skus = [v.sku for v in variants]
    gtins = [v.gtin for v in variants if v.gtin]
    if len(set(skus)) != len(skus):
        raise UnprocessableEntity("The same SKU appears twice.")
    if len(set(gtins)) != len(gtins):
        raise UnprocessableEntity("The same GTIN appears twice.")
    taken = await repository.existing_skus(session, skus)
    if taken:
        raise Conflict(f"SKU(s) already exist: {', '.join(sorted(taken))}.")
    taken_gtins = await repository.existing_gtins(session, gtins)
    if taken_gtins:
        raise Conflict(f"GTIN(s) already belong to another variant: {', '.join(sorted(taken_gtins))}.")


async def _flush_or_conflict(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("A SKU or GTIN was taken by a concurrent write; retry.") from None


async def create_product(session: AsyncSession, *, body: ProductCreate, settings: Settings) -> Product:
    """A new product with its variants; emits ecom.product.created.v1."""
    family = await family_for_category(session, body.category_id)
    definitions = _definitions(family)
    _check_attributes(body.attributes, definitions)
    _check_publishable(body.channels, body.attributes, definitions, settings)
    await _check_new_variants(session, body.variants)
    now = utc_now()
    product = Product(
        id=new_id(),
        title=body.title,
        brand=body.brand,
        description=body.description,
        category_id=body.category_id,
        family_id=family.id if family is not None else None,
        status=body.status,
        attributes=body.attributes,
        media_urls=body.media_urls,
        channels=body.channels,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    await _flush_or_conflict(session)
    for variant in body.variants:
        session.add(
            Variant(
                sku=variant.sku,
                product_id=product.id,
                gtin=variant.gtin,
                attributes=variant.attributes,
                created_at=now,
            )
        )
    await _flush_or_conflict(session)
    await _reindex(session, product, [v.sku for v in body.variants])
    await outbox.add(
        session,
        build_event(
            "ecom.product.created.v1",
            ProductCreated(
                product_id=product.id,
                status=product.status,
                category_id=product.category_id,
                skus=[v.sku for v in body.variants],
                version=1,
                details=await channel_details(session, product, body.variants),
            ),
            subject=product.id,
            sequence=1,
        ),
    )
    return product


async def get_product(session: AsyncSession, *, product_id: str) -> Product:
    product = await repository.get_product(session, product_id)
    if product is None:
        raise NotFound(f"No product {product_id}.")
    return product


async def update_product(
    session: AsyncSession,
    *,
    product: Product,
    changes: ProductUpdate,
    if_match: str | None,
    settings: Settings,
) -> ProductRead:
    """Apply the fields present in `changes`; 428 without If-Match, 412 when the version is stale
    (checked again in the UPDATE itself, so a concurrent writer cannot be overwritten). Returns the
    product's API view."""
    check_if_match(if_match, product.version)
    values = changes.model_dump(exclude_unset=True)
    if "attributes" in values:
        merged = {**product.attributes, **values["attributes"]}
        values["attributes"] = {k: v for k, v in merged.items() if v is not None}
    category_id = values.get("category_id", product.category_id)
    family = await family_for_category(session, category_id)
    definitions = _definitions(family)
    attributes = values.get("attributes", product.attributes)
    _check_attributes(attributes, definitions)
    _check_publishable(values.get("channels", product.channels), attributes, definitions, settings)
    if "category_id" in values:
        values["family_id"] = family.id if family is not None else None
    changed = sorted(k for k, v in values.items() if getattr(product, k) != v)
    if not changed:
        return await product_read(session, product=product, settings=settings)
    await _bump_version(session, product, values)
    variants = await _emit_product_change(session, product, changed)
    return await _product_view(session, product, variants, settings)


async def _bump_version(session: AsyncSession, product: Product, values: dict[str, Any]) -> datetime:
    """Write `values` and the next version if the product's version still holds (412 if not), and
    mirror them on `product`; the time written is returned."""
    expected = product.version
    now = utc_now()
    if not await repository.update_product_if_version(
        session, product.id, expected_version=expected, values=values, now=now
    ):
        raise PreconditionFailed("The product was changed by someone else; read it again and retry.")
    for key, value in values.items():
        setattr(product, key, value)
    product.version = expected + 1
    product.updated_at = now
    return now


async def _reindex(session: AsyncSession, product: Product, skus: list[str]) -> None:
    document = search.document_of(
        title=product.title,
        brand=product.brand,
        description=product.description,
        attributes=product.attributes,
        skus=skus,
    )
    await search.index_product(session, product_id=product.id, document=document)


async def _emit_product_change(
    session: AsyncSession, product: Product, changed: list[str], *, reindex: bool = True
) -> Sequence[Variant]:
    """Reindex the product (unless only derived data changed: `reindex=False`) and emit its updated (or
    archived) event; returns its variants."""
    variants = await repository.variants_of(session, product.id)
    skus = [v.sku for v in variants]
    if reindex:
        await _reindex(session, product, skus)
    if product.status == "archived" and "status" in changed:
        event = build_event(
            "ecom.product.archived.v1",
            ProductArchived(
                product_id=product.id,
                version=product.version,
                skus=skus,
                details=await channel_details(session, product, variants),
            ),
            subject=product.id,
            sequence=product.version,
        )
    else:
        event = build_event(
            "ecom.product.updated.v1",
            ProductUpdated(
                product_id=product.id,
                status=product.status,
                version=product.version,
                changed_fields=changed,
                skus=skus,
                category_id=product.category_id,
                details=await channel_details(session, product, variants),
            ),
            subject=product.id,
            sequence=product.version,
        )
    await outbox.add(session, event)
    return variants


async def add_variant(
    session: AsyncSession, *, product: Product, body: VariantCreate, if_match: str | None, settings: Settings
) -> ProductRead:
    """Add a variant; the product's version goes up. If-Match is checked when sent (412 when another
    change came first). Without it, the variant is added to the product as it is when the row is locked:
    variants added at the same moment by several callers are all added, one version each. Returns the
    product's API view."""
    check_if_match(if_match, product.version, required=False)
    await _check_new_variants(session, [body])
    if if_match is None:
        now = utc_now()
        if not await repository.update_product_if_version(
            session, product.id, expected_version=None, values={}, now=now
        ):
            raise NotFound(f"No product {product.id}.")
        await session.refresh(product)  # read under the row's lock: what the event and the view carry
    else:
        now = await _bump_version(session, product, {})
    session.add(
        Variant(
            sku=body.sku, product_id=product.id, gtin=body.gtin, attributes=body.attributes, created_at=now
        )
    )
    await _flush_or_conflict(session)
    variants = await _emit_product_change(session, product, ["variants"])
    return await _product_view(session, product, variants, settings)


async def list_products(
    session: AsyncSession, *, limit: int, after_id: str | None, status: str | None, category_id: str | None
) -> Sequence[Product]:
    category_ids = await subtree_ids(session, category_id=category_id) if category_id else None
    return await repository.list_products(
        session, limit=limit, after_id=after_id, status=status, category_ids=category_ids
    )


async def product_read(session: AsyncSession, *, product: Product, settings: Settings) -> ProductRead:
    """The full API view of a product: variants and completeness per channel included."""
    return await _product_view(session, product, await repository.variants_of(session, product.id), settings)


async def _product_view(
    session: AsyncSession, product: Product, variants: Sequence[Variant], settings: Settings
) -> ProductRead:
    """`product_read` with the product's variants (in SKU order) already at hand."""
    family = await repository.cached_family(session, product.family_id) if product.family_id else None
    return to_read(
        product,
        [VariantRead(sku=v.sku, gtin=v.gtin, attributes=v.attributes) for v in variants],
        family,
        settings,
    )


async def read_product(database: Database, *, product_id: str, settings: Settings) -> ProductRead:
    """GET of one product: one query for the product and its variants (families are cached), on a
    connection of its own: a read needs no session and commits nothing."""
    async with database.read() as connection:
        rows = await repository.product_with_variants(connection, product_id)
        if not rows:
            raise NotFound(f"No product {product_id}.")
        product = rows[0]
        family_id = product.family_id
        family = await repository.cached_family_read(connection, family_id) if family_id else None
    variants = [
        VariantRead(sku=row.variant_sku, gtin=row.variant_gtin, attributes=row.variant_attributes)
        for row in rows
        if row.variant_sku is not None
    ]
    return to_read(product, variants, family, settings)


def to_read(
    product: Product | Row[Any],
    variants: list[VariantRead],
    family: AttributeFamily | None,
    settings: Settings,
) -> ProductRead:
    """The API view of a product (an ORM instance or a row of the products table)."""
    definitions = _read_definitions(family)
    ratios = {c.channel: c for c in completeness(product.attributes, definitions)}
    report = {}
    for channel in sorted(set(ratios) | set(product.channels)):
        entry = ratios.get(channel)
        ratio, missing = (entry.ratio, entry.missing) if entry is not None else (1.0, [])
        threshold = settings.threshold_for(channel)
        report[channel] = ChannelCompleteness(
            completeness=ratio,
            missing=missing,
            threshold=threshold,
            publishable=product.status != "archived" and ratio >= threshold,
        )
    return ProductRead(
        id=product.id,
        title=product.title,
        brand=product.brand,
        description=product.description,
        category_id=product.category_id,
        family_id=product.family_id,
        status=product.status,
        attributes=product.attributes,
        media_urls=product.media_urls,
        channels=product.channels,
        variants=variants,
        completeness=report,
        version=product.version,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


async def completeness_report(
    session: AsyncSession,
    *,
    channel: str,
    only_below: bool,
    limit: int,
    after_id: str | None,
    settings: Settings,
) -> tuple[list[CompletenessEntry], str | None]:
    """Completeness on `channel` of non-archived products, in id order; the last id scanned is the cursor."""
    families = {family.id: _definitions(family) for family in await repository.all_families(session)}
    entries: list[CompletenessEntry] = []
    last_id = after_id
    threshold = settings.threshold_for(channel)
    while True:
        batch = await repository.list_products(
            session, limit=REPORT_BATCH, after_id=last_id, status=None, category_ids=None
        )
        rows = batch[:REPORT_BATCH]
        exhausted = len(batch) <= REPORT_BATCH
        for index, product in enumerate(rows):
            last_id = product.id
            if product.status == "archived":
                continue
            definitions = families.get(product.family_id or "", [])
            entry = next(
                (c for c in completeness(product.attributes, definitions) if c.channel == channel), None
            )
            ratio, missing = (entry.ratio, entry.missing) if entry is not None else (1.0, [])
            if only_below and ratio >= threshold:
                continue
            entries.append(
                CompletenessEntry(
                    product_id=product.id,
                    title=product.title,
                    status=product.status,
                    channel=channel,
                    completeness=ratio,
                    missing=missing,
                    threshold=threshold,
                    publishable=ratio >= threshold,
                )
            )
            if len(entries) >= limit:
                more = index < len(rows) - 1 or not exhausted
                return entries, last_id if more else None
        if exhausted:
            return entries, None
