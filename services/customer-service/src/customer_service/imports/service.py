"""Bulk import of customers from CSV or NDJSON.

Every row is validated and normalised before anything is written: a file with a bad row imports
nothing and reports every bad row (row, field, reason). A valid file is then imported in chunks
(`CUSTOMER_IMPORT_CHUNK_ROWS`), each chunk committed in one transaction together with the job's
progress, so other writers are never blocked for the whole file. If the process or the database fails
in the middle, the rows of the committed chunks stay imported and the job says exactly which
(`processed_rows`, and the error names the first row not imported); re-uploading the file imports the
rest, since rows already imported match their customer by email or external id."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col

from contracts import uuid7
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.schemas import CustomerCreate
from customer_service.imports.bulk import BulkImporter, ChunkResult
from customer_service.imports.models import ImportJob
from servicekit.db import Database
from servicekit.errors import ServiceError
from servicekit.files import CsvReader, FileFormatError, FileLimits, read_ndjson

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "locale",
    "country",
    "tags",
    "line1",
    "line2",
    "city",
    "postcode",
    "region",
    "address_country",
    "external_source",
    "external_id",
)
# Where a CSV column lands in the customer model (error paths are reported by column).
_CSV_FIELD_OF_PATH = {
    "emails.0.address": "email",
    "emails.0": "email",
    "phones.0.number": "phone",
    "phones.0": "phone",
    "addresses.0.line1": "line1",
    "addresses.0.line2": "line2",
    "addresses.0.city": "city",
    "addresses.0.postcode": "postcode",
    "addresses.0.region": "region",
    "addresses.0.country": "address_country",
    "external_ids.0.source": "external_source",
    "external_ids.0.id": "external_id",
    "external_ids.0": "external_id",
}
MAX_ERRORS = 1000
# A chunk that hits a concurrent writer's identifier (or a busy database) is retried this often.
CHUNK_ATTEMPTS = 3
# Rows validated per worker-thread call (a heartbeat is written between blocks).
VALIDATION_BLOCK_ROWS = 5_000
# PostgreSQL: refresh the planner's statistics of the tables an import grows when it has created this
# many customers, then again each time that number doubles.
ANALYZE_FIRST_AT = 2_000
ANALYZED_TABLES = ("customers", "customer_identifiers", "customer_blocking_keys")

# Rows committed so far by the running jobs of this process (also written to the job row per chunk).
PROGRESS: dict[str, int] = {}


FileError = FileFormatError
"""A file that cannot be read as CSV/NDJSON at all (names the line); nothing of it is imported."""

IMPORT_FILE_LIMITS = FileLimits(max_rows=1_000_000, max_columns=len(CSV_COLUMNS), max_cell_chars=64 * 1024)


@dataclass
class ParsedRow:
    number: int
    data: dict[str, Any]


def parse(content: IO[bytes] | bytes, fmt: str) -> list[ParsedRow]:
    """Rows of the file with their 1-based data row number; FileError (with the line) if the file is
    structurally broken: bad UTF-8 or NUL bytes, an unterminated quote, a wrong cell count, a cell, line
    or nesting depth over the limits, an NDJSON line that is not a JSON object."""
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    if fmt == "ndjson":
        return [ParsedRow(line.number, line.value) for line in read_ndjson(source, IMPORT_FILE_LIMITS)]
    return _parse_csv(source)


def _parse_csv(source: IO[bytes]) -> list[ParsedRow]:
    reader = CsvReader(source, IMPORT_FILE_LIMITS)
    unknown = [name for name in reader.header if name not in CSV_COLUMNS]
    if unknown:
        raise FileError(f"Unknown CSV column(s): {', '.join(unknown)}. Known: {', '.join(CSV_COLUMNS)}.")
    return [
        ParsedRow(row.number, _csv_to_model({k: v.strip() for k, v in row.cells.items()})) for row in reader
    ]


def _csv_to_model(cells: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: cells[name]
        for name in ("first_name", "last_name", "birthday", "locale", "country")
        if cells.get(name)
    }
    if cells.get("email"):
        data["emails"] = [{"address": cells["email"]}]
    if cells.get("phone"):
        data["phones"] = [{"number": cells["phone"]}]
    if cells.get("tags"):
        data["tags"] = [t for t in cells["tags"].split(";") if t.strip()]
    if any(cells.get(k) for k in ("line1", "city", "postcode", "address_country")):
        data["addresses"] = [
            {
                "kind": "shipping",
                "line1": cells.get("line1", ""),
                "line2": cells.get("line2") or None,
                "city": cells.get("city", ""),
                "postcode": cells.get("postcode") or None,
                "region": cells.get("region") or None,
                "country": cells.get("address_country") or cells.get("country", ""),
            }
        ]
    if cells.get("external_id") or cells.get("external_source"):
        data["external_ids"] = [
            {"source": cells.get("external_source", ""), "id": cells.get("external_id", "")}
        ]
    return data


def _field_name(path: str, fmt: str) -> str:
    path = path.removeprefix("body.")
    if fmt == "csv":
        return _CSV_FIELD_OF_PATH.get(path, path.split(".")[0])
    return path


def validate_rows(
    context: CustomerContext, rows: list[ParsedRow], fmt: str
) -> tuple[list[customers.NormalizedProfile], list[dict[str, Any]]]:
    """Normalised profiles of every row, and the row-level errors (row, field, reason)."""
    profiles: list[customers.NormalizedProfile] = []
    errors: list[dict[str, Any]] = []
    for row in rows:
        if "__error__" in row.data:
            errors.append({"row": row.number, "field": None, "reason": row.data["__error__"]})
            continue
        try:
            model = CustomerCreate.model_validate(row.data)
            profiles.append(customers.normalize_create(context, model))
        except ValidationError as exc:
            for err in exc.errors():
                path = ".".join(str(p) for p in err["loc"])
                errors.append({"row": row.number, "field": _field_name(path, fmt), "reason": err["msg"]})
        except ServiceError as exc:
            for err in exc.extra.get("errors", []):
                errors.append(
                    {"row": row.number, "field": _field_name(err["field"], fmt), "reason": err["message"]}
                )
        if len(errors) >= MAX_ERRORS:
            break
    return profiles, errors


async def create_job(database: Database, *, fmt: str, actor: str, total_rows: int) -> ImportJob:
    async with database.session() as session:
        stamp = customers.now()
        job = ImportJob(
            id=str(uuid7()),
            format=fmt,
            actor=actor,
            total_rows=total_rows,
            created_at=stamp,
            heartbeat_at=stamp,
        )
        session.add(job)
    return job


async def run(
    database: Database, context: CustomerContext, *, job_id: str, rows: list[ParsedRow], fmt: str
) -> None:
    """Validate all rows; if any is bad, fail the job with the report and write nothing. Else import
    the rows in chunks of `context.import_chunk_rows`, each chunk committed with the job's progress."""
    PROGRESS[job_id] = 0
    committed = created = matched = 0
    try:
        await _update(database, job_id, status="running")
        profiles, errors = await _validate_all(database, context, job_id, rows, fmt)
        if errors:
            await _update(database, job_id, status="failed", errors=errors, finished=True)
            return
        importer = BulkImporter(context)
        size = max(1, context.import_chunk_rows)
        next_analyze = ANALYZE_FIRST_AT
        for start in range(0, len(profiles), size):
            chunk = profiles[start : start + size]
            result = await _import_chunk(database, importer, job_id, chunk, done=start)
            committed += len(chunk)
            created += result.created
            matched += result.matched
            PROGRESS[job_id] = committed
            if created >= next_analyze and not database.is_sqlite:
                await _refresh_statistics(database)
                next_analyze *= 2
        await _update(
            database,
            job_id,
            status="succeeded",
            processed=committed,
            created=created,
            matched=matched,
            finished=True,
        )
    except Exception as exc:
        log.exception("import job %s failed after %d committed rows", job_id, committed)
        if isinstance(exc, ServiceError) and exc.detail:
            reason = exc.detail
        elif isinstance(exc, JobAbandoned):
            reason = str(exc)
        else:
            reason = f"The import stopped on an error ({type(exc).__name__})."
        if committed:
            reason += (
                f" The first {committed} rows (up to row {rows[committed - 1].number}) were imported and "
                "stay imported; re-upload the file to import the rest: rows already imported are matched "
                "by email or external id, not created again."
            )
        else:
            reason += " Nothing was imported."
        first_not_imported = rows[committed].number if committed < len(rows) else committed + 1
        await _update(
            database,
            job_id,
            status="failed",
            errors=[{"row": first_not_imported, "field": None, "reason": reason}],
            processed=committed,
            created=created,
            matched=matched,
            finished=True,
        )
    finally:
        PROGRESS.pop(job_id, None)


async def _validate_all(
    database: Database, context: CustomerContext, job_id: str, rows: list[ParsedRow], fmt: str
) -> tuple[list[customers.NormalizedProfile], list[dict[str, Any]]]:
    """`validate_rows` in blocks, each in a worker thread so the event loop keeps serving requests,
    with a heartbeat between blocks (validating a big file takes a while)."""
    profiles: list[customers.NormalizedProfile] = []
    errors: list[dict[str, Any]] = []
    for start in range(0, len(rows), VALIDATION_BLOCK_ROWS):
        block = rows[start : start + VALIDATION_BLOCK_ROWS]
        valid, invalid = await asyncio.to_thread(validate_rows, context, block, fmt)
        profiles += valid
        errors += invalid
        if len(errors) >= MAX_ERRORS:
            return profiles, errors
        await _update(database, job_id, status="running")
    return profiles, errors


class JobAbandoned(RuntimeError):
    pass


async def _import_chunk(
    database: Database,
    importer: BulkImporter,
    job_id: str,
    chunk: list[customers.NormalizedProfile],
    *,
    done: int,
) -> ChunkResult:
    """One chunk in one transaction with the job's progress; retried when a concurrent writer took an
    identifier first (the retry matches it) or the database was busy."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            async with database.session() as session:
                result = await importer.import_chunk(session, chunk)
                job = await session.get(ImportJob, job_id)
                if job is not None and job.status != "running":
                    # Another process found no progress for too long and failed the job: stop here
                    # (this chunk rolls back) rather than import behind its back.
                    raise JobAbandoned("The job was marked failed as abandoned while it was running.")
                if job is not None:
                    job.processed_rows = done + len(chunk)
                    job.created_count += result.created
                    job.matched_count += result.matched
                    job.heartbeat_at = customers.now()
            return result
        except (IntegrityError, OperationalError):
            if attempt == CHUNK_ATTEMPTS:
                raise
            log.warning("import job %s: chunk at row %d conflicted, retrying", job_id, done + 1)
    raise AssertionError("unreachable")


async def _refresh_statistics(database: Database) -> None:
    """PostgreSQL plans the chunk queries from table statistics; during a big import they lag behind
    (autovacuum is slower than the import), and a plan made for a small table scans the whole table per
    chunk. Analysing as the import doubles the tables keeps the plans on the indexes, at log(N) cost."""
    async with database.session() as session:
        await session.execute(text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))


async def _update(
    database: Database,
    job_id: str,
    *,
    status: str,
    errors: list[dict[str, Any]] | None = None,
    processed: int | None = None,
    created: int | None = None,
    matched: int | None = None,
    finished: bool = False,
) -> None:
    async with database.session() as session:
        job = await session.get(ImportJob, job_id)
        if job is None:
            return
        job.status = status
        job.heartbeat_at = customers.now()
        if errors is not None:
            job.errors = errors
        if processed is not None:
            job.processed_rows = processed
        if created is not None:
            job.created_count = created
        if matched is not None:
            job.matched_count = matched
        if finished:
            job.finished_at = customers.now()


async def fail_abandoned_jobs(database: Database, *, stale_after: timedelta) -> int:
    """Mark failed the jobs left pending or running by a process that stopped (no progress written for
    `stale_after`); the uploaded file is not kept, so they cannot be resumed. Returns how many."""
    cutoff = customers.now() - stale_after
    async with database.session() as session:
        jobs = (
            await session.execute(select(ImportJob).where(col(ImportJob.status).in_(("pending", "running"))))
        ).scalars()
        failed = 0
        for job in jobs:
            if job.id in PROGRESS or not _stale(job, cutoff):
                continue
            _abandon(job)
            failed += 1
    if failed:
        log.warning("marked %d abandoned import job(s) failed", failed)
    return failed


def _stale(job: ImportJob, cutoff: datetime) -> bool:
    """No progress written since `cutoff`."""
    return customers.aware(job.heartbeat_at or job.created_at) <= cutoff


def _abandon(job: ImportJob) -> None:
    job.status = "failed"
    job.finished_at = customers.now()
    committed = job.processed_rows
    reason = "The service stopped while this job was running; the uploaded file was not kept."
    if committed:
        reason += (
            f" The first {committed} rows were imported and stay imported; re-upload the file to import "
            "the rest (rows already imported are matched by email or external id, not created again)."
        )
    else:
        reason += " Nothing was imported; re-upload the file."
    job.errors = [{"row": committed + 1, "field": None, "reason": reason}]


async def get(database: Database, job_id: str, *, stale_after: timedelta | None = None) -> ImportJob | None:
    """The job; one of this process shows its live progress, and one left running by a stopped
    process (no progress for `stale_after`) is marked failed on the way."""
    if job_id in PROGRESS:
        async with database.sessionmaker() as session:
            job = await session.get(ImportJob, job_id)
        if job is not None:
            job.status = "running"
            job.processed_rows = max(job.processed_rows, PROGRESS.get(job_id, 0))
        return job
    async with database.session() as session:
        job = await session.get(ImportJob, job_id)
        if (
            job is not None
            and stale_after is not None
            and job.status in ("pending", "running")
            and _stale(job, customers.now() - stale_after)
        ):
            _abandon(job)
    return job
