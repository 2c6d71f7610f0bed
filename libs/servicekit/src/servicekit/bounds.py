"""Bounds on input values, checked once where they enter: JSON documents (depth, finite numbers, integer
range), and annotated types the API schemas share (bounded strings and JSON objects, finite numbers,
amounts that fit the database, date-times in a sane window, ISO 3166-1 country and ISO 4217 currency
codes, amounts with no more decimals than their currency's minor unit)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo

MAX_JSON_DEPTH = 32
"""Arrays and objects nested deeper than this are refused (bodies, NDJSON lines, JSON cells)."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""JSON integers must fit a signed 64-bit column."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Date-times (and dates) the API accepts lie in [EARLIEST, LATEST)."""
MAX_AMOUNT = Decimal("9999999999.99")
"""The largest money amount or price filter (fits NUMERIC(12, 2) and a 64-bit count of minor units)."""


class JSONLimitError(ValueError):
    """A JSON document breaks a bound; `path` names where (e.g. `attributes.n`)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def _path(parts: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in parts)


NUL_MESSAGE = "text may not contain the NUL character (\\u0000)"
SURROGATE_MESSAGE = "text may not contain a lone surrogate (\\ud800-\\udfff): it is not Unicode text"


def _text_problem(text: str) -> str | None:
    """Why a JSON string cannot be stored as text: a NUL, or a lone UTF-16 surrogate (`"\\ud800"` is valid
    JSON, but no UTF-8 text: encoding it for a database or a response fails)."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise JSONLimitError if a parsed JSON value nests deeper than `max_depth`, holds a NaN or infinite
    number, an integer outside the signed 64-bit range, or a NUL character or lone surrogate in a string
    or key (no database text column stores it). Iterative: any depth is safe to check."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if (problem := _text_problem(item)) is not None:
                raise JSONLimitError(problem, _path(path))
        elif isinstance(item, dict):
            if depth >= max_depth:
                raise JSONLimitError(f"nested deeper than {max_depth} levels", _path(path))
            for key, child in item.items():
                if (problem := _text_problem(key)) is not None:
                    raise JSONLimitError(problem, _path(path))
                stack.append((child, depth + 1, (*path, key)))
        elif isinstance(item, list):
            if depth >= max_depth:
                raise JSONLimitError(f"nested deeper than {max_depth} levels", _path(path))
            stack.extend((child, depth + 1, (*path, index)) for index, child in enumerate(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JSONLimitError("numbers must be finite (no NaN, Infinity or overflow)", _path(path))
        elif isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            raise JSONLimitError("integer out of the 64-bit range", _path(path))


class RepeatedKeys:
    """A `json.loads` object_pairs_hook that notes the objects giving a key more than once (`json.loads`
    alone silently keeps the last value); `paths(value)` names those keys (`emails.0.address`)."""

    def __init__(self) -> None:
        self._holders: dict[int, list[str]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            self._holders[id(value)] = [key for key, count in counts.items() if count > 1]
        return value

    def paths(self, value: Any) -> list[str]:
        """The paths of the repeated keys in `value`, the document this hook parsed."""
        if not self._holders:
            return []
        paths: list[str] = []
        stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
        while stack:
            item, path = stack.pop()
            if isinstance(item, dict):
                paths.extend(_path((*path, key)) for key in self._holders.get(id(item), ()))
                stack.extend((child, (*path, key)) for key, child in item.items())
            elif isinstance(item, list):
                stack.extend((child, (*path, index)) for index, child in enumerate(item))
        return sorted(paths)


REPEATED_KEY_MESSAGE = "the key is given more than once in its object; send it once"


def loads_json(
    data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, repeated: list[str] | None = None
) -> Any:
    """`json.loads` that refuses what the platform cannot store: too deep, non-finite or huge numbers.
    Any failure is a JSONLimitError (a ValueError) with a readable message, never a RecursionError.
    `repeated`, when given, receives the path (`emails.0.address`) of every key that an object holds
    more than once (`json.loads` silently keeps the last value), for the caller to refuse."""
    hook = RepeatedKeys() if repeated is not None else None
    try:
        value = json.loads(data, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise JSONLimitError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. an integer of more than 4300 digits
        raise JSONLimitError(f"not valid JSON ({exc})") from None
    check_json(value, max_depth=max_depth)
    if hook is not None and repeated is not None:
        repeated.extend(hook.paths(value))
    return value


# --- annotated types the schemas share ------------------------------------------------------------


def _json_checker(max_depth: int) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_json(value, max_depth=max_depth)
        except JSONLimitError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(check)


JSONObject = Annotated[dict[str, Any], Field(max_length=200), _json_checker(6)]
"""A JSON object of at most 200 keys, nested at most 6 levels, numbers finite (e.g. product attributes)."""
SmallJSONObject = Annotated[dict[str, Any], Field(max_length=50), _json_checker(4)]
"""A JSON object of at most 50 keys, nested at most 4 levels, numbers finite (e.g. variant axes)."""
ShortStr = Annotated[str, StringConstraints(max_length=100)]
"""A string of at most 100 characters (keys, tags, codes)."""
LongStr = Annotated[str, StringConstraints(max_length=2000)]
"""A string of at most 2000 characters (free-text values)."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
"""A float that is a real number of sane size (no NaN, Infinity, or 1e400 turned into infinity)."""
Int64 = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
"""An integer that fits a 64-bit column."""
Amount = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=MAX_AMOUNT, decimal_places=2)]
"""A non-negative money amount with at most two decimals that fits the database."""
AmountFilter = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=MAX_AMOUNT)]
"""A price bound in a query (any precision, within the storable range)."""


# Characters display text must not hold: C0/C1 controls (BEL, ESC of terminal codes, which XML 1.0
# refuses too) and the bidi overrides and isolates that make text display in another order than it is
# stored (U+202E turns "exe.gnp" into "png.exe"). Line text refuses line breaks and tabs as well.
_HIDDEN_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_MESSAGE = (
    "control characters (U+0000-U+001F, U+007F-U+009F{}) and bidirectional overrides or isolates "
    "(U+202A-U+202E, U+2066-U+2069) are not allowed"
)


def _line_text(value: str) -> str:
    if _HIDDEN_IN_LINE.search(value):
        raise ValueError(_HIDDEN_MESSAGE.format(", line breaks and tabs included"))
    return value


def _multiline_text(value: str) -> str:
    if _HIDDEN_IN_TEXT.search(value):
        raise ValueError(_HIDDEN_MESSAGE.format(" other than tab and line breaks"))
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


LineText = Annotated[str, AfterValidator(_line_text)]
"""One line of display text (a title, a brand): no control characters and no bidi overrides."""
MultilineText = Annotated[str, AfterValidator(_multiline_text)]
"""Display text of several lines (a description): tab and line breaks allowed, other controls not."""
Title = Annotated[str, AfterValidator(_line_text), AfterValidator(_not_blank)]
"""A `LineText` that is not only spaces."""


def _in_window(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(f"must lie between {EARLIEST.date()} and {LATEST.date()}")
    return value


def _date_in_window(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must lie between {EARLIEST.date()} and {LATEST.date()}")
    return value


_DATE_TIME_TEXT = re.compile(r"\s*\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def date_time_text(value: Any) -> Any:
    """A moment only as RFC 3339 date-time text, for a `BeforeValidator` of a datetime field a partner or a
    storefront sends: pydantic alone also reads a number as Unix seconds (or milliseconds), so a till's
    20261128 (YYYYMMDD) became 1970-08-23, and a bare date as its midnight."""
    if not isinstance(value, str) or _DATE_TIME_TEXT.match(value) is None:
        raise ValueError("must be an RFC 3339 date-time like 2026-11-28T17:02:00Z")
    return value


SaneDatetime = Annotated[datetime, AfterValidator(_in_window)]
"""A date-time between 1900 and 2200, so date arithmetic (a 30-day window, an expiry) cannot overflow."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of this server's clock a moment that has already happened may be (the client's clock)."""


def _not_future(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if aware > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError(
            f"is in the future (more than {int(CLOCK_SKEW.total_seconds() // 60)} minutes ahead of this "
            "server's clock); it names a moment that has happened"
        )
    return value


PastDatetime = Annotated[datetime, AfterValidator(_in_window), AfterValidator(_not_future)]
"""A `SaneDatetime` of something that has happened (a sale, an order placed, a delivery received): not
more than `CLOCK_SKEW` ahead of now."""
SaneDate = Annotated[date, AfterValidator(_date_in_window)]
"""A date between 1900 and 2200."""


def _country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


# ISO 4217 codes that are no currency a price or an amount can be in: precious metals (gold, silver,
# platinum, palladium), bond-market and IMF/ADB/Arab Monetary Fund units of account, the SUCRE, the code
# reserved for testing and the one for "no currency" (their minor unit is "N.A." in the standard).
NOT_MONEY: frozenset[str] = frozenset(
    {"XAU", "XAG", "XPT", "XPD", "XBA", "XBB", "XBC", "XBD", "XDR", "XUA", "XAD", "XSU", "XTS", "XXX"}
)
# ISO 4217's minor unit of the currencies whose minor unit is not 2 decimals (list one, 2025).
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        (
            *("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND"),
            *("VUV", "XAF", "XOF", "XPF"),
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
MONEY_DECIMALS = 2
"""Decimals the platform keeps of any amount: amounts are stored in hundredths (`amount_minor`)."""


def _currency(value: str) -> str:
    if value != value.upper() or pycountry.currencies.get(alpha_3=value) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (upper case, e.g. EUR)")
    if value in NOT_MONEY:
        raise ValueError(
            f"{value!r} is an ISO 4217 code of a precious metal, a unit of account, testing or no currency, "
            "not a currency amounts can be in"
        )
    return value


def is_country(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code (any case)."""
    return len(code) == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def is_currency(code: str) -> bool:
    """True for an ISO 4217 alphabetic code in upper case of a currency amounts can be in (not NOT_MONEY)."""
    return (
        len(code) == 3
        and code == code.upper()
        and code not in NOT_MONEY
        and pycountry.currencies.get(alpha_3=code) is not None
    )


def minor_units(currency: str) -> int:
    """The decimals of an ISO 4217 currency's minor unit: JPY 0, EUR 2, BHD 3."""
    return _MINOR_UNITS.get(currency, 2)


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def amount_problem(amount: Decimal, currency: str) -> str | None:
    """Why `amount` cannot be an amount in `currency`, else None: it has more decimals than the currency's
    minor unit (10.50 JPY; trailing zeros do not count: 10.00 JPY is 10), or more than the platform keeps
    (`MONEY_DECIMALS`; the third decimal of a BHD amount)."""
    units = minor_units(currency)
    allowed = min(units, MONEY_DECIMALS)
    if _decimals(amount) <= allowed:
        return None
    if units == 0:
        return f"{currency} has no minor unit: an amount in {currency} is a whole number (not {amount})"
    if units > MONEY_DECIMALS:
        return (
            f"an amount in {currency} has at most {MONEY_DECIMALS} decimals here (amounts are kept in "
            f"hundredths), not {amount}"
        )
    return f"an amount in {currency} has at most {units} decimals (its minor unit), not {amount}"


def _in_currency(value: Decimal | None, info: ValidationInfo) -> Decimal | None:
    currency = info.data.get("currency")
    if value is not None and isinstance(currency, str):
        problem = amount_problem(value, currency)
        if problem is not None:
            raise ValueError(problem)
    return value


InCurrency = AfterValidator(_in_currency)
"""Annotate a Decimal amount field with it (`Annotated[Amount, InCurrency]`) to refuse, naming the field,
more decimals than the model's `currency` field allows (`amount_problem`). Declare `currency` before the
amount: a validator sees only the fields declared before its own (a currency refused itself is reported
on its own field)."""


CountryCode = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2),
    AfterValidator(_country),
    Field(description="ISO 3166-1 alpha-2 country code", examples=["DE"]),
]
"""An ISO 3166-1 alpha-2 code, stored upper case."""
CurrencyCode = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    Field(description="ISO 4217 currency code", examples=["EUR"]),
]
"""An ISO 4217 alphabetic currency code."""
