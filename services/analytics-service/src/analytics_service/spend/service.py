"""Recording marketing spend (JSON or CSV) and expenses."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from analytics_service.channels import channel_key
from analytics_service.periods import DateRange
from analytics_service.spend.schemas import MAX_ENTRIES, ExpenseCreate, ExpenseRead, SpendEntry, SpendRead
from analytics_service.warehouse.models import Expense, MarketingSpend
from servicekit.errors import UnprocessableEntity
from servicekit.files import CsvReader, FileFormatError, FileLimits

SPEND_TABLE: Table = MarketingSpend.__table__  # type: ignore[attr-defined]
CSV_COLUMNS = ("day", "channel", "campaign", "amount", "currency")
INSERT_CHUNK = 1000
"""Spend rows per INSERT (6 values each)."""
CSV_LIMITS = FileLimits(max_rows=MAX_ENTRIES * 20, max_columns=20, max_cell_chars=200)


def _minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def check_currency(currency: str, reporting_currency: str) -> None:
    if currency != reporting_currency:
        raise UnprocessableEntity(
            f"Amounts are recorded in the reporting currency {reporting_currency}, not {currency}."
        )


def _spend_key(entry: SpendEntry) -> tuple[date, str, str]:
    return entry.day, channel_key(entry.channel), entry.campaign.strip()


def refuse_repeated_keys(entries: list[SpendEntry], *, places: list[str], fields: list[str]) -> None:
    """422 naming both places when two entries set the same day x channel x campaign (after the channel
    is lower-cased and both are trimmed): which amount was meant is the sender's to say, not ours."""
    first_at: dict[tuple[date, str, str], int] = {}
    repeats: list[tuple[int, int]] = []
    for index, entry in enumerate(entries):
        earlier = first_at.setdefault(_spend_key(entry), index)
        if earlier != index:
            repeats.append((earlier, index))
    if not repeats:
        return

    def key_text(index: int) -> str:
        day, channel, campaign = _spend_key(entries[index])
        return f"{day} x {channel} x {campaign or '(no campaign)'}"

    shown = "; ".join(f"{places[a]} and {places[b]} both set {key_text(b)}" for a, b in repeats[:10])
    more = f" (and {len(repeats) - 10} more)" if len(repeats) > 10 else ""
    raise UnprocessableEntity(
        f"Each day x channel x campaign may appear once: {shown}{more}. Nothing was recorded.",
        extra={
            "errors": [
                {
                    "field": fields[b],
                    "message": f"repeats {key_text(b)} of {places[a]}",
                    "type": "duplicate_key",
                }
                for a, b in repeats[:100]
            ]
        },
    )


async def record_spend(session: AsyncSession, *, entries: list[SpendEntry], reporting_currency: str) -> int:
    """Set the spend of each day x channel x campaign (replacing what an earlier request recorded for
    it); the caller has refused entries that repeat a key (`refuse_repeated_keys`)."""
    for entry in entries:
        check_currency(entry.currency, reporting_currency)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        day, channel, campaign = _spend_key(entry)
        rows.append(
            {
                "day": day,
                "channel": channel,
                "campaign": campaign,
                "amount_minor": _minor(entry.amount),
                "currency": entry.currency,
                "updated_at": now,
            }
        )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # A statement per chunk: a file's 20,000 rows in one would bind 120,000 values, past PostgreSQL's
    # 32,767 (and SQLite's own limit on some builds).
    for start in range(0, len(rows), INSERT_CHUNK):
        statement = insert(SPEND_TABLE).values(rows[start : start + INSERT_CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=["day", "channel", "campaign"],
            set_={name: statement.excluded[name] for name in ("amount_minor", "currency", "updated_at")},
        )
        await session.execute(statement)
    return len(rows)


def read_spend_csv(source: IO[bytes]) -> list[SpendEntry]:
    """Spend entries from a CSV with columns day, channel, campaign, amount, currency; a file with a bad
    row, or with two rows for one day x channel x campaign, is refused whole naming the line(s)."""
    try:
        reader = CsvReader(source, CSV_LIMITS)
        missing = [name for name in CSV_COLUMNS if name not in reader.header and name != "campaign"]
        if missing:
            raise UnprocessableEntity(f"The CSV lacks the column(s): {', '.join(missing)}.")
        entries: list[SpendEntry] = []
        lines: list[str] = []
        for row in reader:
            lines.append(f"line {row.line}")
            values = {name: row.cells.get(name, "") for name in CSV_COLUMNS}
            try:
                values["amount"] = str(Decimal(values["amount"]))
                entries.append(SpendEntry.model_validate(values))
            except (ValidationError, InvalidOperation) as exc:
                detail = (
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                    if isinstance(exc, ValidationError)
                    else "amount: not a number"
                )
                raise UnprocessableEntity(f"Line {row.line}: {detail}.") from None
    except FileFormatError as exc:
        raise UnprocessableEntity(f"The file is not a valid CSV: {exc}.") from None
    if not entries:
        raise UnprocessableEntity("The CSV has no rows.")
    if len(entries) > MAX_ENTRIES * 20:
        raise UnprocessableEntity(f"At most {MAX_ENTRIES * 20} rows per file.")
    refuse_repeated_keys(entries, places=lines, fields=lines)
    return entries


async def list_spend(session: AsyncSession, *, span: DateRange, channel: str | None) -> list[SpendRead]:
    statement = (
        select(MarketingSpend)
        .where(col(MarketingSpend.day) >= span.start, col(MarketingSpend.day) <= span.end)
        .order_by(col(MarketingSpend.day), col(MarketingSpend.channel), col(MarketingSpend.campaign))
    )
    if channel is not None:
        statement = statement.where(col(MarketingSpend.channel) == channel)
    return [
        SpendRead(
            day=s.day,
            channel=s.channel,
            campaign=s.campaign,
            amount=s.amount_minor / 100,
            currency=s.currency,
            updated_at=s.updated_at,
        )
        for s in await session.scalars(statement)
    ]


def _expense_read(expense: Expense) -> ExpenseRead:
    return ExpenseRead(
        id=expense.id,
        day=expense.day,
        category=expense.category,
        amount=expense.amount_minor / 100,
        currency=expense.currency,
        description=expense.description,
        created_at=expense.created_at,
    )


async def add_expense(session: AsyncSession, *, body: ExpenseCreate, reporting_currency: str) -> ExpenseRead:
    check_currency(body.currency, reporting_currency)
    expense = Expense(
        id=str(uuid.uuid4()),
        day=body.day,
        category=body.category,
        amount_minor=_minor(body.amount),
        currency=body.currency,
        description=body.description,
        created_at=datetime.now(UTC),
    )
    session.add(expense)
    await session.flush()
    return _expense_read(expense)


async def list_expenses(session: AsyncSession, *, span: DateRange) -> list[ExpenseRead]:
    statement = (
        select(Expense)
        .where(col(Expense.day) >= span.start, col(Expense.day) <= span.end)
        .order_by(col(Expense.day), col(Expense.id))
    )
    return [_expense_read(e) for e in await session.scalars(statement)]
