"""Row validation of an import, per error mode: what can be normalised is (spaces, case, date formats,
postcodes with spaces); then a row with an invalid field refuses the file (`refuse`), is skipped
(`skip_row`), or is kept without that field (`drop_field`). Every mode reports each row's problems."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import ValidationError

from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.normalize import BulkNormalizer
from customer_service.customers.schemas import CustomerCreate, ExternalIdentity
from servicekit.errors import ServiceError

OnError = Literal["refuse", "skip_row", "drop_field"]
ON_ERROR_MODES: tuple[str, ...] = ("refuse", "skip_row", "drop_field")
# A row with more invalid fields than this is skipped even in drop_field mode.
MAX_DROPS = 6

# Where a CSV column lands in the customer model (error paths are reported by column).
CSV_FIELD_OF_PATH = {
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
    "addresses.0": "address",
    "external_ids.0.source": "external_source",
    "external_ids.0.id": "external_id",
    "external_ids.0": "external_id",
}
# List items that mean nothing without the field that failed: drop the whole item.
_ITEM_LEAVES = {"emails": "address", "phones": "number", "external_ids": None}

_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def normalize_date(value: str) -> str:
    """A birth date written 1980-3-4, 1980/03/04, 19800304 or 04/03/1980 as ISO 8601 (numbers before
    the year are day then month, unless only the other order is a date); other text unchanged."""
    text = value.strip()
    parts: tuple[str, str, str] | None = None
    if match := _ISO.match(text) or _COMPACT.match(text):
        parts = (match.group(1), match.group(2), match.group(3))
    elif match := _DAY_FIRST.match(text):
        first, second, year = int(match.group(1)), int(match.group(2)), match.group(3)
        day, month = (second, first) if second > 12 >= first else (first, second)
        parts = (year, str(month), str(day))
    if parts is None:
        return text
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2])).isoformat()
    except ValueError:
        return text


@dataclass
class ParsedRow:
    number: int
    data: dict[str, Any]
    raw: dict[str, Any] | None = None
    repeated: tuple[str, ...] = ()
    """Paths of the keys the row's NDJSON line gave more than once (see `check_repeated`)."""
    line: int = 0


@dataclass
class CheckedRow:
    """One row after validation: its profile if it is imported, and the problems found."""

    number: int
    profile: customers.NormalizedProfile | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] | None = None


def field_name(path: str, fmt: str) -> str:
    path = path.removeprefix("body.")
    if fmt == "csv":
        return CSV_FIELD_OF_PATH.get(path, path.split(".")[0])
    return path


def _problems(region: str, data: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    """The normalised profile, or the (model path, reason) of every problem."""
    try:
        model = CustomerCreate.model_validate(data)
        return customers.normalize_profile(region, model, normalizer=BulkNormalizer), []
    except ValidationError as exc:
        return None, [(".".join(str(p) for p in err["loc"]), str(err["msg"])) for err in exc.errors()]
    except ServiceError as exc:
        errors = exc.extra.get("errors", [])
        if not errors:
            return None, [("", exc.detail or exc.title)]
        return None, [(str(err["field"]).removeprefix("body."), str(err["message"])) for err in errors]


def _drop(data: dict[str, Any], path: str) -> bool:
    """Remove the field at `path` (e.g. addresses.0.postcode) from `data`; False if it cannot be."""
    parts = path.split(".")
    if not parts or not parts[0] or parts[0] not in data:
        return False
    if len(parts) == 1:
        del data[parts[0]]
        return True
    container = data[parts[0]]
    if not isinstance(container, list) or not parts[1].isdigit() or int(parts[1]) >= len(container):
        return False
    index = int(parts[1])
    item = container[index]
    if len(parts) == 2 or parts[0] in _ITEM_LEAVES or not isinstance(item, dict) or parts[2] not in item:
        del container[index]
    else:
        del item[parts[2]]
    if not container:
        del data[parts[0]]
    return True


def _cleaned(data: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data.get("birthday"), str):
        data = {**data, "birthday": normalize_date(data["birthday"]) or None}
    return data


def check_row(region: str, row: ParsedRow, fmt: str, mode: str) -> CheckedRow:
    """The row validated and normalised (phone numbers without a country code read in `region`)."""
    data = _cleaned(row.data)
    profile, problems = _problems(region, data)
    if not problems:
        return CheckedRow(row.number, profile, [], row.raw)
    errors = [{"row": row.number, "field": field_name(p, fmt), "reason": r} for p, r in problems]
    if mode != "drop_field":
        return CheckedRow(row.number, None, errors, row.raw)
    data = {
        k: ([dict(i) if isinstance(i, dict) else i for i in v] if isinstance(v, list) else v)
        for k, v in data.items()
    }
    for _ in range(MAX_DROPS):
        if not all(_drop(data, path) for path, _ in problems):
            break
        profile, problems = _problems(region, data)
        if not problems:
            return CheckedRow(row.number, profile, [{**e, "dropped": True} for e in errors], row.raw)
        errors += [{"row": row.number, "field": field_name(p, fmt), "reason": r} for p, r in problems]
    return CheckedRow(row.number, None, errors, row.raw)


def check_repeated(region: str, row: ParsedRow, fmt: str, mode: str) -> CheckedRow:
    """A row whose line gives a key twice (`{"first_name": "A", "first_name": "B"}`): which value was
    meant is unknown, so each such key is an invalid field. `refuse` and `skip_row` refuse the row;
    `drop_field` imports the row without those fields (an email, a phone or an external id whole),
    checked as any other row."""
    repeated = [
        {
            "row": row.number,
            "field": field_name(path, fmt),
            "reason": f"line {row.line}: the key {path!r} is given more than once; send it once",
        }
        for path in row.repeated
    ]
    if mode != "drop_field":
        return CheckedRow(row.number, None, repeated, row.raw)
    data = {
        k: ([dict(i) if isinstance(i, dict) else i for i in v] if isinstance(v, list) else v)
        for k, v in row.data.items()
    }
    if not all(_drop(data, path) for path in row.repeated):
        return CheckedRow(row.number, None, repeated, row.raw)
    rest = check_row(region, ParsedRow(row.number, data, row.raw), fmt, mode)
    if rest.profile is None:
        return CheckedRow(row.number, None, repeated + rest.errors, row.raw)
    return CheckedRow(
        row.number, rest.profile, [{**e, "dropped": True} for e in repeated] + rest.errors, row.raw
    )


def check_rows(context: CustomerContext, rows: list[ParsedRow], fmt: str, mode: str) -> list[CheckedRow]:
    return [check_row(context.default_region, row, fmt, mode) for row in rows]


# A block of rows as it travels to and from a validation worker process: plain tuples, lists and
# dicts (about ten times cheaper to pickle than the dataclasses). Out: (number, data) per row. Back:
# (errors, profile) per row, the profile as (emails, phones, addresses, birthday, fields, external ids
# as (source, id)) or None.
PackedProfile = tuple[list[Any], list[Any], list[Any], str | None, dict[str, Any], list[tuple[str, str]]]
PackedResult = tuple[list[dict[str, Any]], PackedProfile | None]


def pack_rows(rows: list[ParsedRow]) -> list[tuple[int, dict[str, Any]]]:
    return [(row.number, row.data) for row in rows]


def check_packed(
    region: str, packed: list[tuple[int, dict[str, Any]]], fmt: str, mode: str
) -> list[PackedResult]:
    """`check_rows` of a packed block (run in a validation worker process)."""
    out: list[PackedResult] = []
    for number, data in packed:
        checked = check_row(region, ParsedRow(number, data), fmt, mode)
        profile = checked.profile
        if profile is None:
            out.append((checked.errors, None))
            continue
        contact = profile.contact
        external = [(e.source, e.id) for e in profile.external_ids or []]
        out.append(
            (
                checked.errors,
                (
                    contact.emails,
                    contact.phones,
                    contact.addresses,
                    contact.birthday,
                    profile.fields,
                    external,
                ),
            )
        )
    return out


def unpack_checked(rows: list[ParsedRow], results: list[PackedResult]) -> list[CheckedRow]:
    """The CheckedRows of `rows` from `check_packed`'s answer for them."""
    checked: list[CheckedRow] = []
    for row, (errors, packed) in zip(rows, results, strict=True):
        profile = None
        if packed is not None:
            emails, phones, addresses, birthday, fields, external = packed
            profile = customers.NormalizedProfile(
                customers.Contact(emails, phones, addresses, birthday),
                fields,
                [ExternalIdentity.model_construct(source=source, id=id_) for source, id_ in external],
            )
        checked.append(CheckedRow(row.number, profile, errors, row.raw))
    return checked
