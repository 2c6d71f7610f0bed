"""Bulk import of customers from CSV or NDJSON: validate every row first, then import all rows in one
transaction (dedupe on ingest), so a bad file imports nothing and reports every bad row."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import uuid7
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerCreate, IdentifyRequest
from customer_service.imports.models import ImportJob
from servicekit.db import Database
from servicekit.errors import ServiceError

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

# Rows processed so far by running jobs of this process (the job row is written when it ends).
PROGRESS: dict[str, int] = {}


class FileError(ValueError):
    pass


@dataclass
class ParsedRow:
    number: int
    data: dict[str, Any]


def parse(content: bytes, fmt: str) -> list[ParsedRow]:
    """Rows of the file with their 1-based data row number; FileError if it is not readable at all."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("The file is not UTF-8 text.") from None
    if fmt == "ndjson":
        return _parse_ndjson(text)
    return _parse_csv(text)


def _parse_ndjson(text: str) -> list[ParsedRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(ParsedRow(number, {"__error__": f"not valid JSON: {exc.msg}"}))
            continue
        rows.append(
            ParsedRow(number, value if isinstance(value, dict) else {"__error__": "not a JSON object"})
        )
    return rows


def _parse_csv(text: str) -> list[ParsedRow]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if not header:
        raise FileError("The CSV file has no header row.")
    if unknown:
        raise FileError(f"Unknown CSV column(s): {', '.join(unknown)}. Known: {', '.join(CSV_COLUMNS)}.")
    rows = []
    for number, raw in enumerate(reader, start=1):
        cells = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        rows.append(ParsedRow(number, _csv_to_model(cells)))
    return rows


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
        job = ImportJob(
            id=str(uuid7()), format=fmt, actor=actor, total_rows=total_rows, created_at=customers.now()
        )
        session.add(job)
    return job


async def run(
    database: Database, context: CustomerContext, *, job_id: str, rows: list[ParsedRow], fmt: str
) -> None:
    """Validate all rows; if any is bad, fail the job with the report; else import all in one transaction."""
    PROGRESS[job_id] = 0
    try:
        profiles, errors = validate_rows(context, rows, fmt)
        if errors:
            await _finish(database, job_id, status="failed", errors=errors, processed=0)
            return
        created = matched = 0
        async with database.session() as session:
            for number, profile in enumerate(profiles, start=1):
                if await _existing(session, context, profile) is not None:
                    matched += 1
                else:
                    await customers.create_normalized(session, context, profile=profile, source="import")
                    created += 1
                PROGRESS[job_id] = number
            job = await session.get(ImportJob, job_id)
            assert job is not None
            job.status, job.processed_rows = "succeeded", len(profiles)
            job.created_count, job.matched_count = created, matched
            job.finished_at = customers.now()
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        reason = exc.detail if isinstance(exc, ServiceError) and exc.detail else type(exc).__name__
        await _finish(
            database,
            job_id,
            status="failed",
            errors=[{"row": PROGRESS.get(job_id, 0) + 1, "field": None, "reason": reason}],
            processed=0,
        )
    finally:
        PROGRESS.pop(job_id, None)


async def _existing(
    session: AsyncSession, context: CustomerContext, profile: customers.NormalizedProfile
) -> Customer | None:
    """Dedupe on ingest: a row whose email or external id is already known matches that customer."""
    for email in profile.contact.emails:
        found, _ = await customers.lookup_only(session, context, IdentifyRequest(email=email["address"]))
        if found is not None:
            return found
    for external in profile.external_ids or []:
        found, _ = await customers.lookup_only(session, context, IdentifyRequest(external_id=external))
        if found is not None:
            return found
    return None


async def _finish(
    database: Database, job_id: str, *, status: str, errors: list[dict[str, Any]], processed: int
) -> None:
    async with database.session() as session:
        job = await session.get(ImportJob, job_id)
        if job is not None:
            job.status, job.errors, job.processed_rows = status, errors, processed
            job.finished_at = customers.now()


async def get(database: Database, job_id: str) -> ImportJob | None:
    async with database.sessionmaker() as session:
        job = await session.get(ImportJob, job_id)
    if job is not None and job_id in PROGRESS:
        job.status = "running"
        job.processed_rows = PROGRESS[job_id]
    return job
