"""Bulk import (CSV or NDJSON, streamed from a file, upsert by SKU, as a job) and export.

Rows are processed in batches, one transaction each: every row is validated in memory first (schema,
family attributes, GTIN and SKU clashes, against one lookup of the batch's SKUs and GTINs), then the
batch's new products, variants, search documents and outbox events are written in bulk (binary COPY on
PostgreSQL, multi-row INSERTs on SQLite) and updates row by row, in the same transaction. A row that
fails validation writes nothing and lands in the job's error report; if the database still refuses a
batch (a concurrent writer took a SKU or GTIN), the batch is replayed one row per transaction."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import JSON, String, bindparam, func, insert, select, text, update
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
from servicekit.bounds import JSONLimitError, loads_json
from servicekit.db import Database
from servicekit.errors import NotFound, ServiceError
from servicekit.events import outbox
from servicekit.events.models import OutboxMessage
from servicekit.files import CsvReader, FileFormatError, FileLimits, check_file, read_ndjson
from servicekit.gcpause import cyclic_gc_paused
from servicekit.transitions import compare_and_set

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
PRODUCTS_TOPIC = "ecom.products.v1"
EXPORT_PAGE = 500
JSON_COLUMNS = ("attributes", "variant_attributes")
PRODUCT_JSON = frozenset({"attributes", "media_urls", "channels"})
VARIANT_JSON = frozenset({"attributes"})

RawRow = dict[str, Any] | str  # a parsed row, or why it could not be parsed

ACTIVE_STATUSES = ("queued", "running")
HEARTBEAT_SECONDS = 10.0
"""How often a running job records a sign of life (besides each batch it commits)."""
STALE_AFTER = timedelta(seconds=120)
"""A queued or running job without a sign of life for this long was left by a process that stopped (the
uploaded file was not kept, so it cannot be resumed): it is failed when jobs are read."""


class JobAbandoned(RuntimeError):
    """The job is no longer running (failed as abandoned meanwhile): stop without writing more."""


# --- parsing ---------------------------------------------------------------------------------------


IMPORT_FILE_LIMITS = FileLimits(
    max_rows=10_000_000, max_columns=len(CSV_COLUMNS), max_cell_chars=64 * 1024, max_depth=8
)
"""Bounds of an import file (documented in docs/products.md)."""


def _csv_rows(source: IO[bytes]) -> Iterator[tuple[int, RawRow]]:
    for record in CsvReader(source, IMPORT_FILE_LIMITS):
        row: dict[str, Any] = {}
        problem = None
        for key, value in record.cells.items():
            if value == "":
                continue
            if key in JSON_COLUMNS:
                repeated: list[str] = []
                try:
                    row[key] = loads_json(value, max_depth=IMPORT_FILE_LIMITS.max_depth, repeated=repeated)
                except JSONLimitError as exc:
                    problem = f"{key}: {exc}"
                else:
                    if repeated:
                        problem = _repeated_problem(record.line, [f"{key}.{path}" for path in repeated])
            elif key == "media_urls":
                row[key] = [url for url in value.split("|") if url]
            else:
                row[key] = value
        yield record.number, problem or row


def _ndjson_rows(source: IO[bytes]) -> Iterator[tuple[int, RawRow]]:
    for line in read_ndjson(source, IMPORT_FILE_LIMITS):
        yield line.number, _repeated_problem(line.line, line.repeated) if line.repeated else line.value


def _repeated_problem(line: int, paths: Sequence[str]) -> str:
    """Why a row that gives a key twice is refused: which of its values was meant is unknown (a JSON
    parser silently keeps the last)."""
    keys = ", ".join(repr(path) for path in paths)
    return f"line {line}: {keys} given more than once; send each key once"


def parse_rows(source: IO[bytes], fmt: str) -> Iterator[tuple[int, RawRow]]:
    """The file's rows (row number, parsed row or why it cannot be); FileFormatError if the file is
    structurally broken (see `servicekit.files`)."""
    return _csv_rows(source) if fmt == "csv" else _ndjson_rows(source)


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


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction with the first statement.
        await session.execute(text("SELECT 1"))
    return driver


async def _copy(
    session: AsyncSession, table: str, rows: Sequence[dict[str, Any]], json_columns: frozenset[str]
) -> None:
    """Binary COPY of `rows` (dicts with the same keys) into `table`, in the session's transaction;
    `json_columns` are sent as JSON text."""
    driver = await _driver_connection(session)
    columns = list(rows[0])
    pick = itemgetter(*columns)
    records: list[Any] = [pick(row) for row in rows]
    positions = [i for i, column in enumerate(columns) if column in json_columns]
    if positions:
        dumps = json.dumps
        for n, record in enumerate(records):
            values = list(record)
            for i in positions:
                value = values[i]
                if value or value is None:
                    values[i] = dumps(value)
                else:  # the usual empty {} or [] without a call
                    values[i] = "{}" if isinstance(value, dict) else "[]"
            records[n] = values
    try:
        await driver.copy_records_to_table(table, columns=columns, records=records)
    except Exception as exc:
        if str(getattr(exc, "sqlstate", "")).startswith("23"):  # integrity constraint violation
            raise IntegrityError(f"COPY {table}", None, exc) from exc
        raise


@dataclass
class NewRows:
    """What a batch inserts at its end: new products with their first variant, their search documents,
    and the events of every product the batch created or updated."""

    products: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    documents: list[tuple[str, str]] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)


async def _insert_new(session: AsyncSession, new: NewRows, topic: str) -> None:
    """Insert a batch's new rows: COPY on PostgreSQL, multi-row INSERTs on SQLite."""
    now = utc_now()
    outbox_rows = [outbox.row_of(event, topic=topic, now=now) for event in new.events]
    if _is_postgres(session):
        if new.products:
            await _copy(session, Product.__tablename__, new.products, PRODUCT_JSON)
        if new.variants:
            await _copy(session, Variant.__tablename__, new.variants, VARIANT_JSON)
        await search.index_products(session, new.documents)
        if outbox_rows:
            await _copy(session, OutboxMessage.__tablename__, outbox_rows, frozenset())
    else:
        if new.products:
            await session.execute(insert(Product), new.products)
        if new.variants:
            await session.execute(insert(Variant), new.variants)
        await search.index_products(session, new.documents)
        if outbox_rows:
            await session.execute(insert(OutboxMessage), outbox_rows)
    if outbox_rows:
        await outbox.mark_staged(session)


@dataclass(frozen=True)
class KnownVariant:
    sku: str
    product_id: str
    gtin: str | None
    attributes: dict[str, Any]


async def _known_variants(
    session: AsyncSession, skus: list[str], gtins: list[str]
) -> tuple[dict[str, KnownVariant], dict[str, str]]:
    """The batch's SKUs that exist already, and the owner SKU of each of its GTINs that is taken."""
    if _is_postgres(session):
        result = await session.execute(
            text(
                # Joins on unnest, so the plan is index lookups whatever the table's statistics say.
                "SELECT v.sku, v.product_id, v.gtin, v.attributes "
                "FROM unnest(CAST(:skus AS varchar[])) AS s(sku) JOIN variants v ON v.sku = s.sku "
                "UNION ALL "
                "SELECT v.sku, v.product_id, v.gtin, v.attributes "
                "FROM unnest(CAST(:gtins AS varchar[])) AS g(gtin) JOIN variants v ON v.gtin = g.gtin"
            )
            .bindparams(skus=skus, gtins=gtins)
            .columns(sku=String, product_id=String, gtin=String, attributes=JSON),
        )
        found = [KnownVariant(*row) for row in result.all()]
    else:
        statement = select(
            col(Variant.sku), col(Variant.product_id), col(Variant.gtin), col(Variant.attributes)
        )
        condition: Any = col(Variant.sku).in_(skus)
        if gtins:
            condition = condition | col(Variant.gtin).in_(gtins)
        found = [KnownVariant(*row) for row in (await session.execute(statement.where(condition))).all()]
    wanted_skus, wanted_gtins = set(skus), set(gtins)
    existing = {variant.sku: variant for variant in found if variant.sku in wanted_skus}
    owners = {variant.gtin: variant.sku for variant in found if variant.gtin and variant.gtin in wanted_gtins}
    return existing, owners


@dataclass
class ProductState:
    """An existing product as a batch changes it (its row is locked until the batch commits)."""

    id: str
    title: str
    brand: str | None
    description: str | None
    category_id: str | None
    family_id: str | None
    status: str
    attributes: dict[str, Any]
    media_urls: list[str]
    version: int
    read_version: int


@dataclass
class Updates:
    """What a batch changes in existing products and variants, written once at the batch's end."""

    products: dict[str, ProductState] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_variants: list[dict[str, Any]] = field(default_factory=list)


_PRODUCTS = Product.__table__  # type: ignore[attr-defined]
_VARIANTS = Variant.__table__  # type: ignore[attr-defined]
_UPDATE_PRODUCT = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.id == bindparam("b_id"), _PRODUCTS.c.version == bindparam("b_read_version"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "title",
                "brand",
                "description",
                "category_id",
                "family_id",
                "status",
                "attributes",
                "media_urls",
                "version",
                "updated_at",
            )
        }
    )
)
_UPDATE_VARIANT = (
    update(_VARIANTS)
    .where(_VARIANTS.c.sku == bindparam("b_sku"))
    .values(gtin=bindparam("gtin"), attributes=bindparam("attributes"))
)


async def _existing_products(
    session: AsyncSession, product_ids: set[str]
) -> tuple[dict[str, ProductState], dict[str, list[str]]]:
    """The products a batch may update, locked for the batch (PostgreSQL), and each one's SKUs."""
    if not product_ids:
        return {}, {}
    ids = list(product_ids)
    found = await session.execute(
        select(
            _PRODUCTS.c.id,
            _PRODUCTS.c.title,
            _PRODUCTS.c.brand,
            _PRODUCTS.c.description,
            _PRODUCTS.c.category_id,
            _PRODUCTS.c.family_id,
            _PRODUCTS.c.status,
            _PRODUCTS.c.attributes,
            _PRODUCTS.c.media_urls,
            _PRODUCTS.c.version,
        )
        .where(_PRODUCTS.c.id.in_(ids))
        .order_by(_PRODUCTS.c.id)
        .with_for_update()
    )
    products = {row.id: ProductState(**row._mapping, read_version=row.version) for row in found}
    skus_of: dict[str, list[str]] = {product_id: [] for product_id in products}
    variants = await session.execute(
        select(_VARIANTS.c.product_id, _VARIANTS.c.sku)
        .where(_VARIANTS.c.product_id.in_(list(products)))
        .order_by(_VARIANTS.c.sku)
    )
    for product_id, sku in variants:
        skus_of[product_id].append(sku)
    return products, skus_of


async def _write_updates(
    session: AsyncSession, updates: Updates, skus_of: dict[str, list[str]], now: datetime
) -> None:
    """A batch's changes to existing products: new variants, variant and product UPDATEs (executemany)
    and their search documents. The products were read locked, so their versions still hold."""
    if updates.new_variants:
        await session.execute(insert(Variant), updates.new_variants)
    if updates.variants:
        await session.execute(_UPDATE_VARIANT, list(updates.variants.values()))
    if not updates.products:
        return
    states = list(updates.products.values())
    result = await session.execute(
        _UPDATE_PRODUCT,
        [
            {
                "b_id": state.id,
                "b_read_version": state.read_version,
                "title": state.title,
                "brand": state.brand,
                "description": state.description,
                "category_id": state.category_id,
                "family_id": state.family_id,
                "status": state.status,
                "attributes": state.attributes,
                "media_urls": state.media_urls,
                "version": state.version,
                "updated_at": now,
            }
            for state in states
        ],
    )
    if session.get_bind().dialect.supports_sane_multi_rowcount and getattr(result, "rowcount", -1) != len(
        states
    ):
        raise IntegrityError("a product changed concurrently", None, ValueError())
    await search.index_products(
        session,
        [
            (
                state.id,
                search.document_of(
                    title=state.title,
                    brand=state.brand,
                    description=state.description,
                    attributes=state.attributes,
                    skus=skus_of[state.id],
                ),
            )
            for state in states
        ],
        replace=True,
    )


async def _stage_rows(
    session: AsyncSession,
    rows: list[tuple[int, ImportRow]],
    context: JobContext,
    result: BatchResult,
) -> NewRows:
    """Validate `rows` in the session's transaction, write their updates and return what they insert;
    invalid rows go to result.errors."""
    new = NewRows()
    if not rows:
        return new
    skus = [row.sku for _, row in rows]
    gtins = [row.gtin for _, row in rows if row.gtin]
    existing, gtin_owner = await _known_variants(session, skus, gtins)
    product_ids = {v.product_id for v in existing.values()} | {
        row.product_id for _, row in rows if row.product_id
    }
    products, skus_of = await _existing_products(session, product_ids)
    updates = Updates()

    now = utc_now()
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
            new.products.append(
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
            new.variants.append(
                {
                    "sku": row.sku,
                    "product_id": product_id,
                    "gtin": row.gtin,
                    "attributes": row.variant_attributes or {},
                    "created_at": now,
                }
            )
            new.documents.append(
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
            new.events.append(
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
        variant_changed = False
        if variant is None:
            updates.new_variants.append(
                {
                    "sku": row.sku,
                    "product_id": product.id,
                    "gtin": row.gtin,
                    "attributes": row.variant_attributes or {},
                    "created_at": now,
                }
            )
            skus_of[product.id] = sorted([*skus_of[product.id], row.sku])
            variant_changed = True
        else:
            gtin = row.gtin if row.gtin is not None else variant.gtin
            variant_attributes = (
                row.variant_attributes if row.variant_attributes is not None else variant.attributes
            )
            if gtin != variant.gtin or variant_attributes != variant.attributes:
                updates.variants[row.sku] = {"b_sku": row.sku, "gtin": gtin, "attributes": variant_attributes}
                variant_changed = True
        changed = sorted(values) + (["variants"] if variant_changed else [])
        result.updated += 1
        if not changed:
            continue
        for key, value in values.items():
            setattr(product, key, value)
        product.version += 1
        updates.products[product.id] = product
        new.events.append(
            build_event(
                "ecom.product.updated.v1",
                ProductUpdated(
                    product_id=product.id,
                    status=product.status,
                    version=product.version,
                    changed_fields=[c for c in changed if c != "family_id"],
                    skus=list(skus_of[product.id]),
                    category_id=product.category_id,
                ),
                subject=product.id,
                sequence=product.version,
            )
        )
    await _write_updates(session, updates, skus_of, now)
    return new


async def _record(session: AsyncSession, job_id: str, processed: int, result: BatchResult) -> None:
    if result.errors:
        await session.execute(
            insert(ImportRowError),
            [
                {"job_id": job_id, "row_number": number, "sku": (sku or "")[:200] or None, "message": message}
                for number, sku, message in sorted(result.errors, key=lambda error: error[0])
            ],
        )
    counted = await compare_and_set(
        session,
        _job_in(job_id, "running").values(
            rows_processed=col(ImportJob.rows_processed) + processed,
            rows_created=col(ImportJob.rows_created) + result.created,
            rows_updated=col(ImportJob.rows_updated) + result.updated,
            rows_failed=col(ImportJob.rows_failed) + len(result.errors),
            heartbeat_at=utc_now(),
        ),
    )
    if not counted:
        # Failed as abandoned meanwhile (no sign of life for STALE_AFTER): the batch rolls back, and the
        # job stops.
        raise JobAbandoned(f"import job {job_id} is no longer running")


def _validate_batch(
    batch: list[tuple[int, RawRow]],
) -> tuple[list[tuple[int, str | None, str]], list[tuple[int, ImportRow]]]:
    """The batch's rows that fit the row schema, and why the others do not."""
    errors: list[tuple[int, str | None, str]] = []
    rows: list[tuple[int, ImportRow]] = []
    for number, raw in batch:
        if isinstance(raw, str):
            errors.append((number, None, raw))
            continue
        try:
            rows.append((number, ImportRow.model_validate(raw)))
        except ValidationError as exc:
            sku = raw.get("sku")
            errors.append((number, sku if isinstance(sku, str) else None, _describe(exc)))
    return errors, rows


async def _replay(
    database: Database,
    job_id: str,
    size: int,
    parse_errors: list[tuple[int, str | None, str]],
    rows: list[tuple[int, ImportRow]],
    context: JobContext,
) -> None:
    """After the database refused a batch: count its parse errors, then one row per transaction."""
    if len(rows) <= 1:
        async with database.session() as session:
            failed = BatchResult(errors=list(parse_errors))
            failed.errors += [
                (number, row.sku, "a concurrent write took this SKU or GTIN") for number, row in rows
            ]
            await _record(session, job_id, size, failed)
        return
    async with database.session() as session:
        await _record(session, job_id, len(parse_errors), BatchResult(errors=list(parse_errors)))
    for number, row in rows:
        await process_batch(database, job_id, [(number, row.model_dump(exclude_none=True))], context)


async def process_batch(
    database: Database, job_id: str, batch: list[tuple[int, RawRow]], context: JobContext
) -> None:
    """Validate, write and count one batch in one transaction (one row per transaction if it clashes)."""
    with cyclic_gc_paused():
        parse_errors, rows = _validate_batch(batch)
        try:
            async with database.session() as session:
                result = BatchResult(errors=list(parse_errors))
                new = await _stage_rows(session, rows, context, result)
                await _insert_new(session, new, PRODUCTS_TOPIC)
                await _record(session, job_id, len(batch), result)
            return
        except IntegrityError:
            pass
    await _replay(database, job_id, len(batch), parse_errors, rows, context)


async def run_import(database: Database, job_id: str, upload: Path | IO[bytes], fmt: str) -> None:
    """Process a stored upload (a file path, or an open binary file) to the end, then delete or close it.

    The whole file is read once first: a structurally broken one fails the job with the line where it
    broke and imports nothing. Then rows are imported in batches; the job records progress per batch,
    and a sign of life every HEARTBEAT_SECONDS (see STALE_AFTER). Stopped by a shutdown, the job is
    failed with the rows it got to."""
    context = JobContext()
    heartbeat: asyncio.Task[None] | None = None
    try:
        source = await asyncio.to_thread(upload.open, "rb") if isinstance(upload, Path) else upload
    except OSError as exc:
        await _finish(database, job_id, "failed", f"The upload could not be read: {exc}"[:2000])
        return
    try:
        async with database.session() as session:
            started = await compare_and_set(
                session, _job_in(job_id, "queued").values(status="running", heartbeat_at=utc_now())
            )
        if not started:
            raise JobAbandoned(f"import job {job_id} is no longer queued")
        heartbeat = asyncio.create_task(_beat(database, job_id), name=f"import-heartbeat-{job_id}")
        await asyncio.to_thread(check_file, source, fmt, IMPORT_FILE_LIMITS)
        batch: list[tuple[int, RawRow]] = []
        for item in parse_rows(source, fmt):
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                await process_batch(database, job_id, batch, context)
                batch = []
        if batch:
            await process_batch(database, job_id, batch, context)
        status, error = "succeeded", None
    except JobAbandoned:
        log.warning("import job %s was failed as abandoned while it ran; stopped", job_id)
        return
    except FileFormatError as exc:
        status, error = "failed", f"The file cannot be read, nothing was imported: {exc}"[:2000]
    except asyncio.CancelledError:
        # The service is shutting down: record where the job stopped (shielded from the cancellation).
        await asyncio.shield(
            _finish(database, job_id, "failed", "The service shut down while this job ran.", stopped=True)
        )
        raise
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
        await asyncio.to_thread(source.close)
        if isinstance(upload, Path):
            await asyncio.to_thread(upload.unlink, missing_ok=True)
    await _finish(database, job_id, status, error)


async def _finish(
    database: Database, job_id: str, status: str, error: str | None, *, stopped: bool = False
) -> None:
    """End the job (a compare-and-set: a job already failed as abandoned keeps that report). `stopped`:
    the error is completed with the rows imported so far."""
    async with database.session() as session:
        if stopped:
            processed = await session.scalar(
                select(col(ImportJob.rows_processed)).where(col(ImportJob.id) == job_id)
            )
            error = f"{error} {_resume_hint(int(processed or 0))}"[:2000]
        await compare_and_set(
            session,
            _job_in(job_id, *ACTIVE_STATUSES).values(status=status, error=error, finished_at=utc_now()),
        )


def _resume_hint(processed: int) -> str:
    if not processed:
        return "Nothing was imported; upload the file again."
    return (
        f"The first {processed} rows were processed and stay imported; upload the file again to import "
        "the rest (rows are upserts by SKU, so rows already imported are updated, not created twice)."
    )


def _job_in(job_id: str, *statuses: str) -> Any:
    """An UPDATE of the job that applies only while it is in one of `statuses` (for compare_and_set)."""
    return update(ImportJob).where(col(ImportJob.id) == job_id, col(ImportJob.status).in_(statuses))


async def _beat(database: Database, job_id: str) -> None:
    """A running job's sign of life every HEARTBEAT_SECONDS (also while the file is being checked);
    stops when the job no longer runs. A failed write is retried at the next beat."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with database.session() as session:
                beat = _job_in(job_id, "running").values(heartbeat_at=utc_now())
                alive = await compare_and_set(session, beat)
        except Exception:
            log.warning("import job %s: recording its heartbeat failed", job_id, exc_info=True)
            continue
        if not alive:
            return


async def fail_abandoned(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Fail the queued or running jobs without a sign of life for STALE_AFTER (left by a process that
    stopped): each a compare-and-set on its status, progress and heartbeat, so a job that records
    progress meanwhile keeps running and two readers fail it once. Returns how many it failed."""
    cutoff = (now or utc_now()) - STALE_AFTER
    last_sign = func.coalesce(col(ImportJob.heartbeat_at), col(ImportJob.created_at))
    stale = (
        await session.execute(
            select(col(ImportJob.id), col(ImportJob.rows_processed)).where(
                col(ImportJob.status).in_(ACTIVE_STATUSES), last_sign < cutoff
            )
        )
    ).all()
    failed = 0
    for job_id, processed in stale:
        error = (
            f"The service stopped while this job ran (no sign of life for {STALE_AFTER.seconds} s); "
            f"the uploaded file was not kept. {_resume_hint(processed)}"
        )
        failed += await compare_and_set(
            session,
            _job_in(job_id, *ACTIVE_STATUSES)
            .where(col(ImportJob.rows_processed) == processed, last_sign < cutoff)
            .values(status="failed", error=error[:2000], finished_at=utc_now()),
        )
    if failed:
        await session.commit()
        log.warning("marked %d abandoned import job(s) failed", failed)
    return failed


async def create_job(database: Database, *, fmt: str, size: int, actor: str) -> ImportJob:
    """The job row, committed before processing starts."""
    job = ImportJob(
        id=new_id(), format=fmt, status="queued", bytes_total=size, actor=actor, created_at=utc_now()
    )
    async with database.session() as session:
        session.add(job)
    return job


async def get_job(session: AsyncSession, *, job_id: str) -> ImportJob:
    """The job; one left queued or running by a stopped process is failed on the way (`fail_abandoned`)."""
    await fail_abandoned(session)
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"No import job {job_id}.")
    return job


async def list_jobs(
    session: AsyncSession, *, status: str | None, before_id: str | None, limit: int
) -> Sequence[ImportJob]:
    """Import jobs, newest first (ids are time-ordered), up to limit + 1 (one more says there is more);
    those left queued or running by a stopped process are failed first (`fail_abandoned`)."""
    await fail_abandoned(session)
    query = select(ImportJob).order_by(col(ImportJob.id).desc()).limit(limit + 1)
    if status is not None:
        query = query.where(col(ImportJob.status) == status)
    if before_id is not None:
        query = query.where(col(ImportJob.id) < before_id)
    return (await session.execute(query)).scalars().all()


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
