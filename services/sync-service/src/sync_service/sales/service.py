"""End-of-day sales files of POS channels: read strictly, checked row by row, recorded once per receipt
id, each new receipt published as ecom.sale.recorded.v1 (customer-service places it as a POS order)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import build_event
from contracts.catalog.sales import ReceiptLine, SaleRecorded
from servicekit.bounds import amount_problem
from servicekit.db import insert_if_absent
from servicekit.events import outbox
from servicekit.files import CsvReader, FileFormatError, FileLimits, read_ndjson
from servicekit.http.idempotency import fingerprint
from sync_service.channels.models import Channel
from sync_service.common import utc_now
from sync_service.listings import facts
from sync_service.listings.models import CatalogStock, CatalogVariant
from sync_service.sales.models import PosReceipt
from sync_service.sales.schemas import COLUMNS, RowError, SalesReport, SalesRow

SALES_FILE_LIMITS = FileLimits(max_rows=200_000, max_columns=len(COLUMNS), max_cell_chars=1000, max_depth=4)
MAX_LINES_PER_RECEIPT = 500
ORDER_NUMBER_MAX = 100
"""customer-service places a receipt as the order `POS-<channel code>-<receipt id>`, and an order number
holds at most this many characters: a longer one is cut there, so two receipts whose ids share their
first characters would become one order (the second dead-lettered, or taken for a repeat of the first)."""

OnError = Literal["refuse", "skip_receipt"]
NO_ROWS = "the file holds no sales row (a sales file has at least one receipt line)"


class SalesFileError(ValueError):
    """The file cannot be read at all (structure, encoding, columns): nothing is recorded."""


@dataclass
class ParsedRow:
    line: int
    row: SalesRow | None
    receipt_id: str | None
    errors: list[RowError] = field(default_factory=list)


def _row(line: int, values: dict[str, Any]) -> ParsedRow:
    cleaned = {k: v for k, v in values.items() if not (k == "loyalty_id" and v in ("", None))}
    receipt = cleaned.get("receipt_id")
    receipt_id = str(receipt).strip() if isinstance(receipt, str | int) and str(receipt).strip() else None
    try:
        return ParsedRow(line, SalesRow.model_validate(cleaned), receipt_id)
    except ValidationError as exc:
        errors = [
            RowError(
                line=line,
                receipt_id=receipt_id,
                field=".".join(str(part) for part in error["loc"]) or "row",
                message=error["msg"],
            )
            for error in exc.errors()
        ]
        return ParsedRow(line, None, receipt_id, errors)


def parse(source: IO[bytes], fmt: Literal["csv", "ndjson"]) -> list[ParsedRow]:
    """Every data row, validated; SalesFileError (with the line) when the file itself is broken or holds
    no row (a header alone: the till exported nothing, or the wrong file was sent)."""
    try:
        if fmt == "ndjson":
            rows = [_row(item.line, item.value) for item in read_ndjson(source, SALES_FILE_LIMITS)]
            if not rows:
                raise SalesFileError(f"line 1: {NO_ROWS}")
            return rows
        reader = CsvReader(source, SALES_FILE_LIMITS)
        unknown = [name for name in reader.header if name not in COLUMNS]
        missing = [name for name in COLUMNS if name != "loyalty_id" and name not in reader.header]
        if unknown or missing:
            raise SalesFileError(
                f"line 1: the header must name the columns {', '.join(COLUMNS)} (loyalty_id optional); "
                + "; ".join(
                    part
                    for part in (
                        f"unknown: {', '.join(unknown)}" if unknown else "",
                        f"missing: {', '.join(missing)}" if missing else "",
                    )
                    if part
                )
            )
        rows = [_row(row.line, row.cells) for row in reader]
        if not rows:
            raise SalesFileError(f"line 2: {NO_ROWS}, only the header")
        return rows
    except FileFormatError as exc:
        raise SalesFileError(str(exc)) from None


@dataclass
class Receipt:
    receipt_id: str
    rows: list[ParsedRow]

    @property
    def first_line(self) -> int:
        return self.rows[0].line


def _check_receipt(receipt: Receipt) -> list[RowError]:
    """Problems of a receipt as a whole: one store, one time, one loyalty id, distinct line numbers."""
    rows = [parsed.row for parsed in receipt.rows if parsed.row is not None]
    if len(rows) != len(receipt.rows):
        return []  # its rows' own errors are reported already
    problems: list[RowError] = []

    def problem(field_name: str, message: str) -> None:
        problems.append(
            RowError(
                line=receipt.first_line, receipt_id=receipt.receipt_id, field=field_name, message=message
            )
        )

    for name in ("store", "time", "loyalty_id"):
        if len({getattr(row, name) for row in rows}) > 1:
            problem(name, f"every line of a receipt has the same {name}")
    numbers = [row.line for row in rows]
    if len(set(numbers)) != len(numbers):
        problem("line", "a line number appears twice in the receipt")
    if len(rows) > MAX_LINES_PER_RECEIPT:
        problem("line", f"a receipt has at most {MAX_LINES_PER_RECEIPT} lines")
    return problems


def _order_number_problem(receipt: Receipt, channel_code: str) -> list[RowError]:
    """The receipt id is too long for the order number customer-service will place it as."""
    room = ORDER_NUMBER_MAX - len(f"POS-{channel_code}-")
    if len(receipt.receipt_id) <= room:
        return []
    return [
        RowError(
            line=receipt.first_line,
            receipt_id=receipt.receipt_id,
            field="receipt_id",
            message=f"at most {room} characters on channel {channel_code} (its POS order number "
            f"POS-{channel_code}-<receipt id> holds {ORDER_NUMBER_MAX})",
        )
    ]


def _group(rows: list[ParsedRow]) -> tuple[list[Receipt], list[RowError]]:
    by_id: dict[str, list[ParsedRow]] = defaultdict(list)
    orphans: list[RowError] = []
    for parsed in rows:
        if parsed.receipt_id is None:
            orphans.extend(parsed.errors)
        else:
            by_id[parsed.receipt_id].append(parsed)
    return [Receipt(receipt_id, items) for receipt_id, items in by_id.items()], orphans


def _event(channel: Channel, receipt: Receipt) -> SaleRecorded:
    rows = [parsed.row for parsed in receipt.rows if parsed.row is not None]
    first = rows[0]
    return SaleRecorded(
        channel_id=channel.id,
        channel_code=channel.code,
        receipt_id=receipt.receipt_id,
        store=first.store,
        sold_at=first.time,
        currency=channel.currency,
        lines=[
            ReceiptLine(line=row.line, sku=row.sku, quantity=row.quantity, unit_price=row.price)
            for row in sorted(rows, key=lambda row: row.line)
        ],
        loyalty_id=first.loyalty_id,
    )


async def _check_catalogue(session: AsyncSession, rows: list[ParsedRow]) -> None:
    """An error on each row whose SKU or store sync-service does not know: its catalogue is product-service's
    events (a SKU of no product event; a store at which no stock of any SKU is known). A sale is recorded
    only for what exists, so that stock and purchase history follow a real product at a real store."""
    checked = [(parsed, parsed.row) for parsed in rows if parsed.row is not None]
    known_skus = await facts.known(session, col(CatalogVariant.sku), {row.sku for _, row in checked})
    known_stores = await facts.known(
        session, col(CatalogStock.location_id), {row.store for _, row in checked}
    )
    checks = (
        (
            "sku",
            known_skus,
            "unknown SKU: no product of product-service has it (as its events tell "
            "sync-service; a SKU created moments ago may not have arrived yet)",
        ),
        ("store", known_stores, "unknown store: no stock of any product is known at this location id"),
    )
    for parsed, row in checked:
        for name, known, message in checks:
            if getattr(row, name) not in known:
                parsed.errors.append(
                    RowError(line=parsed.line, receipt_id=parsed.receipt_id, field=name, message=message)
                )


def _check_prices(rows: list[ParsedRow], currency: str) -> None:
    """An error on each row whose price has more decimals than the channel's currency has (10.50 on a JPY
    channel): the receipt would become an order no till could have rung up."""
    for parsed in rows:
        problem = amount_problem(parsed.row.price, currency) if parsed.row is not None else None
        if problem is not None:
            parsed.errors.append(
                RowError(line=parsed.line, receipt_id=parsed.receipt_id, field="price", message=problem)
            )


class SalesRefused(ValueError):
    def __init__(self, report: SalesReport) -> None:
        super().__init__("the file has errors")
        self.report = report


async def record(
    session: AsyncSession, *, channel: Channel, rows: list[ParsedRow], on_error: OnError
) -> SalesReport:
    """Record the file's receipts: each receipt id once per channel (the row in `pos_receipts` is the
    claim, so concurrent uploads of the same receipt record it once); the same receipt again with the same
    content is a duplicate, with other content an error. With on_error=refuse, any error refuses the
    whole file (SalesRefused, nothing recorded); with skip_receipt, the receipts without errors are
    recorded and the others reported."""
    await _check_catalogue(session, rows)
    _check_prices(rows, channel.currency)
    receipts, errors = _group(rows)
    valid: list[Receipt] = []
    for receipt in receipts:
        receipt_errors = [error for parsed in receipt.rows for error in parsed.errors]
        receipt_errors += _check_receipt(receipt) + _order_number_problem(receipt, channel.code)
        if receipt_errors:
            errors.extend(receipt_errors)
        else:
            valid.append(receipt)
    rejected = len(receipts) - len(valid)
    recorded = duplicates = 0
    if errors and on_error == "refuse":
        raise SalesRefused(_report(rows, receipts, 0, 0, rejected, errors))
    now = utc_now()
    for receipt in valid:
        event = _event(channel, receipt)
        content = fingerprint(event.model_dump(mode="json"))
        claimed = await insert_if_absent(
            session,
            PosReceipt.__table__,  # type: ignore[attr-defined]
            {
                "channel_id": channel.id,
                "receipt_id": receipt.receipt_id,
                "fingerprint": content,
                "store": event.store,
                "line_count": len(event.lines),
                "sold_at": event.sold_at,
                "recorded_at": now,
            },
        )
        if claimed:
            recorded += 1
            await outbox.add(session, build_event("ecom.sale.recorded.v1", event, subject=channel.id))
            continue
        existing = await session.get(PosReceipt, (channel.id, receipt.receipt_id))
        if existing is not None and existing.fingerprint == content:
            duplicates += 1
        else:
            rejected += 1
            errors.append(
                RowError(
                    line=receipt.first_line,
                    receipt_id=receipt.receipt_id,
                    field="receipt_id",
                    message="this receipt was recorded before with other content",
                )
            )
    if errors and on_error == "refuse":
        raise SalesRefused(_report(rows, receipts, 0, 0, rejected, errors))
    return _report(rows, receipts, recorded, duplicates, rejected, errors)


def _report(
    rows: list[ParsedRow],
    receipts: list[Receipt],
    recorded: int,
    duplicates: int,
    rejected: int,
    errors: list[RowError],
) -> SalesReport:
    return SalesReport(
        rows=len(rows),
        receipts=len(receipts),
        recorded=recorded,
        duplicates=duplicates,
        rejected=rejected,
        errors=sorted(errors, key=lambda error: error.line),
    )
