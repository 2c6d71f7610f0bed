"""Bulk import (CSV or NDJSON, streamed from a file, upsert by SKU, as a job) and export.

Rows are processed in batches: every row is validated in memory first (schema, family attributes,
GTIN and SKU clashes), then the batch's new products, variants, search documents and events are
written with multi-row INSERTs in one transaction, and updates row by row in the same transaction.
A row that fails validation writes nothing and lands in the job's error report; if the database still
refuses a batch (a concurrent writer took a SKU or GTIN), the batch is replayed one row per transaction."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import CloudEvent, build_event
from contracts.catalog.products import ProductCreated, ProductUpdated
from product_service.catalog import repository as catalog_repository
from product_service.catalog import search
from product_service.catalog.attributes import attribute_errors, definitions_of
from product_service.catalog.models import Product, Variant
from product_service.catalog.schemas import AttributeDefinition
from product_service.catalog.service import family_for_category
from product_service.common import new_id, utc_now
from product_service.transfer.models import ImportJob, ImportRowError
from product_service.transfer.schemas import CSV_COLUMNS, ImportRow
from servicekit.db import Database
from servicekit.errors import NotFound, ServiceError
from servicekit.events.models import OutboxMessage
from servicekit.events.outbox import NOTIFY_CHANNEL, OUTBOX_FLAG

log = logging.getLogger(__name__)

BATCH_SIZE = 500
EXPORT_PAGE = 500
JSON_COLUMNS = ("attributes", "variant_attributes")

RawRow = dict[str, Any] | str  # a parsed row, or why it could not be parsed


# --- parsing ---------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[tuple[int, RawRow]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for number, record in enumerate(reader, start=1):
            if None in record:
                yield number, "the row has more cells than the header"
                continue
            row: dict[str, Any] = {}
            problem = None
            for key, value in record.items():
                if value is None or value == "":
                    continue
                if key in JSON_COLUMNS:
                    try:
                        row[key] = json.loads(value)
                    except ValueError:
                        problem = f"{key}: not valid JSON"
                elif key == "media_urls":
                    row[key] = [url for url in value.split("|") if url]
                else:
                    row[key] = value
            yield number, problem or row


def _ndjson_rows(path: Path) -> Iterator[tuple[int, RawRow]]:
    with path.open(encoding="utf-8") as handle:
        number = 0
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                value = json.loads(line)
            except ValueError:
                yield number, "not valid JSON"
                continue
            yield number, value if isinstance(value, dict) else "a row must be a JSON object"


def parse_rows(path: Path, fmt: str) -> Iterator[tuple[int, RawRow]]:
    return _csv_rows(path) if fmt == "csv" else _ndjson_rows(path)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "row"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)[:2000]


# --- processing ------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)


@dataclass
class JobContext:
    """What a job caches between batches: each category's family definitions."""

    families: dict[str | None, tuple[str | None, list[AttributeDefinition]]] = field(default_factory=dict)

    async def family(
        self, session: AsyncSession, category_id: str | None
    ) -> tuple[str | None, list[AttributeDefinition]]:
        if category_id not in self.families:
            family = await family_for_category(session, category_id)
            self.families[category_id] = (
                (family.id, definitions_of(family.attributes)) if family is not None else (None, [])
            )
        return self.families[category_id]


async def _stage_events(session: AsyncSession, events: Sequence[CloudEvent], topic: str) -> None:
    """Outbox rows for a batch's events in one multi-row INSERT (what outbox.add does one at a time)."""
    if not events:
        return
    now = utc_now()
    await session.execute(
        insert(OutboxMessage),
        [
            {
                "event_id": event.id,
                "event_type": event.type,
                "topic": topic,
                "key": event.subject,
                "payload": event.to_json_bytes(),
                "created_at": now,
                "attempts": 0,
            }
            for event in events
        ],
    )
    session.sync_session.info[OUTBOX_FLAG] = True


async def _apply_rows(
    session: AsyncSession, rows: list[tuple[int, ImportRow]], context: JobContext, result: BatchResult
) -> None:
    """Validate and write `rows` in the session's transaction; invalid rows go to result.errors."""
    skus = [row.sku for _, row in rows]
    existing = {
        variant.sku: variant
        for variant in (await session.execute(select(Variant).where(col(Variant.sku).in_(skus)))).scalars()
    }
    gtins = [row.gtin for _, row in rows if row.gtin]
    gtin_owner: dict[str, str] = {}
    if gtins:
        owners = await session.execute(
            select(col(Variant.gtin), col(Variant.sku)).where(col(Variant.gtin).in_(gtins))
        )
        gtin_owner = {gtin: sku for gtin, sku in owners.all() if gtin}
    product_ids = {v.product_id for v in existing.values()} | {
        row.product_id for _, row in rows if row.product_id
    }
    products: dict[str, Product] = {}
    if product_ids:
        found = await session.execute(select(Product).where(col(Product.id).in_(list(product_ids))))
        products = {product.id: product for product in found.scalars()}

    now = utc_now()
    new_products: list[dict[str, Any]] = []
    new_variants: list[dict[str, Any]] = []
    documents: list[tuple[str, str]] = []
    events: list[CloudEvent] = []
    seen_skus: set[str] = set()
    seen_gtins: set[str] = set()
    for number, row in rows:
        if row.sku in seen_skus:
            result.errors.append((number, row.sku, "the SKU appears twice in the file"))
            continue
        if row.gtin and (gtin_owner.get(row.gtin, row.sku) != row.sku or row.gtin in seen_gtins):
            result.errors.append((number, row.sku, f"GTIN {row.gtin} belongs to another SKU"))
            continue
        variant = existing.get(row.sku)
        target_id = variant.product_id if variant is not None else row.product_id
        product = products.get(target_id) if target_id is not None else None
        if target_id is not None and product is None:
            result.errors.append((number, row.sku, f"no product {target_id}"))
            continue
        if product is None and row.title is None:
            result.errors.append((number, row.sku, "title is required for a new product"))
            continue
        category_id = row.category_id or (product.category_id if product is not None else None)
        try:
            family_id, definitions = await context.family(session, category_id)
        except ServiceError as exc:
            result.errors.append((number, row.sku, exc.detail or exc.title))
            continue
        attributes = {**(product.attributes if product is not None else {}), **(row.attributes or {})}
        attributes = {key: value for key, value in attributes.items() if value is not None}
        problems = attribute_errors(attributes, definitions)
        if problems:
            result.errors.append((number, row.sku, "; ".join(problems)[:2000]))
            continue
        seen_skus.add(row.sku)
        if row.gtin:
            seen_gtins.add(row.gtin)

        if product is None:
            product_id = new_id()
            new_products.append(
                {
                    "id": product_id,
                    "title": row.title,
                    "brand": row.brand,
                    "description": row.description,
                    "category_id": category_id,
                    "family_id": family_id,
                    "status": row.status or "draft",
                    "attributes": attributes,
                    "media_urls": row.media_urls or [],
                    "channels": [],
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            new_variants.append(
                {
                    "sku": row.sku,
                    "product_id": product_id,
                    "gtin": row.gtin,
                    "attributes": row.variant_attributes or {},
                    "created_at": now,
                }
            )
            documents.append(
                (
                    product_id,
                    search.document_of(
                        title=row.title or "",
                        brand=row.brand,
                        description=row.description,
                        attributes=attributes,
                        skus=[row.sku],
                    ),
                )
            )
            events.append(
                build_event(
                    "ecom.product.created.v1",
                    ProductCreated(
                        product_id=product_id,
                        status=row.status or "draft",
                        category_id=category_id,
                        skus=[row.sku],
                        version=1,
                    ),
                    subject=product_id,
                    sequence=1,
                )
            )
            result.created += 1
            continue

        values: dict[str, Any] = {}
        for name in ("title", "brand", "description", "status", "media_urls"):
            value = getattr(row, name)
            if value is not None and value != getattr(product, name):
                values[name] = value
        if attributes != product.attributes:
            values["attributes"] = attributes
        if row.category_id is not None and row.category_id != product.category_id:
            values["category_id"] = row.category_id
            values["family_id"] = family_id
        variant_changes: dict[str, Any] = {}
        if variant is None:
            new_variant = {
                "sku": row.sku,
                "product_id": product.id,
                "gtin": row.gtin,
                "attributes": row.variant_attributes or {},
                "created_at": now,
            }
            await session.execute(insert(Variant), [new_variant])
        else:
            if row.gtin is not None and row.gtin != variant.gtin:
                variant_changes["gtin"] = row.gtin
            if row.variant_attributes is not None and row.variant_attributes != variant.attributes:
                variant_changes["attributes"] = row.variant_attributes
            if variant_changes:
                await session.execute(
                    update(Variant).where(col(Variant.sku) == row.sku).values(**variant_changes)
                )
        changed = sorted(values) + (["variants"] if variant is None or variant_changes else [])
        if not changed:
            result.updated += 1
            continue
        if not await catalog_repository.update_product_if_version(
            session, product.id, expected_version=product.version, values=values, now=now
        ):
            raise IntegrityError("product changed concurrently", None, ValueError())
        for key, value in values.items():
            setattr(product, key, value)
        product.version += 1
        variant_skus = [v.sku for v in await catalog_repository.variants_of(session, product.id)]
        await search.index_product(
            session,
            product_id=product.id,
            document=search.document_of(
                title=product.title,
                brand=product.brand,
                description=product.description,
                attributes=product.attributes,
                skus=variant_skus,
            ),
        )
        events.append(
            build_event(
                "ecom.product.updated.v1",
                ProductUpdated(
                    product_id=product.id,
                    status=product.status,
                    version=product.version,
                    changed_fields=[c for c in changed if c != "family_id"],
                    skus=variant_skus,
                ),
                subject=product.id,
                sequence=product.version,
            )
        )
        result.updated += 1

    if new_products:
        await session.execute(insert(Product), new_products)
        await session.execute(insert(Variant), new_variants)
        await search.index_new_products(session, documents)
    await _stage_events(session, events, "ecom.products.v1")
    if events and session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def _record(session: AsyncSession, job_id: str, processed: int, result: BatchResult) -> None:
    if result.errors:
        await session.execute(
            insert(ImportRowError),
            [
                {"job_id": job_id, "row_number": number, "sku": (sku or "")[:200] or None, "message": message}
                for number, sku, message in sorted(result.errors, key=lambda error: error[0])
            ],
        )
    await session.execute(
        update(ImportJob)
        .where(col(ImportJob.id) == job_id)
        .values(
            rows_processed=col(ImportJob.rows_processed) + processed,
            rows_created=col(ImportJob.rows_created) + result.created,
            rows_updated=col(ImportJob.rows_updated) + result.updated,
            rows_failed=col(ImportJob.rows_failed) + len(result.errors),
        )
    )


async def process_batch(
    database: Database, job_id: str, batch: list[tuple[int, RawRow]], context: JobContext
) -> None:
    """Validate, write and count one batch in one transaction (one row per transaction if it clashes)."""
    parse_errors = BatchResult()
    rows: list[tuple[int, ImportRow]] = []
    for number, raw in batch:
        if isinstance(raw, str):
            parse_errors.errors.append((number, None, raw))
            continue
        try:
            rows.append((number, ImportRow.model_validate(raw)))
        except ValidationError as exc:
            sku = raw.get("sku")
            parse_errors.errors.append((number, sku if isinstance(sku, str) else None, _describe(exc)))
    try:
        async with database.session() as session:
            result = BatchResult(errors=list(parse_errors.errors))
            await _apply_rows(session, rows, context, result)
            await _record(session, job_id, len(batch), result)
        return
    except IntegrityError:
        if len(rows) <= 1:
            async with database.session() as session:
                failed = BatchResult(errors=list(parse_errors.errors))
                failed.errors += [
                    (number, row.sku, "a concurrent write took this SKU or GTIN") for number, row in rows
                ]
                await _record(session, job_id, len(batch), failed)
            return
    async with database.session() as session:
        await _record(session, job_id, len(parse_errors.errors), parse_errors)
    for number, row in rows:
        await process_batch(database, job_id, [(number, row.model_dump(exclude_none=True))], context)


async def run_import(database: Database, job_id: str, path: Path, fmt: str) -> None:
    """Process a stored upload to the end, then delete it. The job records progress per batch."""
    context = JobContext()
    try:
        async with database.session() as session:
            await session.execute(
                update(ImportJob).where(col(ImportJob.id) == job_id).values(status="running")
            )
        batch: list[tuple[int, RawRow]] = []
        for item in parse_rows(path, fmt):
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                await process_batch(database, job_id, batch, context)
                batch = []
        if batch:
            await process_batch(database, job_id, batch, context)
        status, error = "succeeded", None
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    async with database.session() as session:
        await session.execute(
            update(ImportJob)
            .where(col(ImportJob.id) == job_id)
            .values(status=status, error=error, finished_at=utc_now())
        )


async def create_job(database: Database, *, fmt: str, size: int, actor: str) -> ImportJob:
    """The job row, committed before processing starts."""
    job = ImportJob(
        id=new_id(), format=fmt, status="queued", bytes_total=size, actor=actor, created_at=utc_now()
    )
    async with database.session() as session:
        session.add(job)
    return job


async def get_job(session: AsyncSession, *, job_id: str) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"No import job {job_id}.")
    return job


async def job_errors(
    session: AsyncSession, *, job_id: str, after_id: int | None, limit: int
) -> Sequence[ImportRowError]:
    query = (
        select(ImportRowError)
        .where(col(ImportRowError.job_id) == job_id)
        .order_by(col(ImportRowError.id))
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(col(ImportRowError.id) > after_id)
    return (await session.execute(query)).scalars().all()


# --- export ----------------------------------------------------------------------------------------


def _export_row(product: Product, variant: Variant) -> dict[str, Any]:
    return {
        "sku": variant.sku,
        "product_id": product.id,
        "title": product.title,
        "brand": product.brand,
        "description": product.description,
        "category_id": product.category_id,
        "status": product.status,
        "gtin": variant.gtin,
        "attributes": product.attributes,
        "variant_attributes": variant.attributes,
        "media_urls": product.media_urls,
    }


def _csv_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    cells = []
    for column in CSV_COLUMNS:
        value = row[column]
        if column in JSON_COLUMNS:
            cells.append(json.dumps(value, separators=(",", ":")) if value else "")
        elif column == "media_urls":
            cells.append("|".join(value))
        else:
            cells.append("" if value is None else str(value))
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


async def export_catalog(database: Database, fmt: str) -> AsyncIterator[bytes]:
    """Every variant of every product, one row each, in product-id order, a page at a time."""
    if fmt == "csv":
        yield (",".join(CSV_COLUMNS) + "\n").encode()
    after: str | None = None
    while True:
        async with database.sessionmaker() as session:
            products = (
                await catalog_repository.list_products(
                    session, limit=EXPORT_PAGE, after_id=after, status=None, category_ids=None
                )
            )[:EXPORT_PAGE]
            if not products:
                return
            ids = [product.id for product in products]
            variants = (
                await session.execute(
                    select(Variant).where(col(Variant.product_id).in_(ids)).order_by(col(Variant.sku))
                )
            ).scalars()
            by_product: dict[str, list[Variant]] = {}
            for variant in variants:
                by_product.setdefault(variant.product_id, []).append(variant)
        chunk = []
        for product in products:
            for variant in by_product.get(product.id, []):
                row = _export_row(product, variant)
                chunk.append(
                    _csv_line(row) if fmt == "csv" else json.dumps(row, separators=(",", ":")) + "\n"
                )
        yield "".join(chunk).encode()
        after = products[-1].id
        await asyncio.sleep(0)
