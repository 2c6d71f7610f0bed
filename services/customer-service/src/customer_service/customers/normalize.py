"""Validation and normalisation of contact data; every problem names its field and the reason."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import email_validator
import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT
from email_validator.syntax import validate_email_domain_name

from servicekit.errors import FieldError, UnprocessableEntity

_SPACES = re.compile(r"\s+")
# Left after spaces are collapsed: C0/C1 controls (BEL, ESC...) and the bidi overrides and isolates that
# make text display in another order than it is stored (e.g. U+202E, "Trojan Source").
_HIDDEN_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# Postcode shapes per country: a pattern on the compacted (no space, upper case) code and a formatter.
_POSTCODES: dict[str, tuple[re.Pattern[str], Callable[[str], str]]] = {
    "US": (re.compile(r"^\d{5}(\d{4})?$"), lambda c: c if len(c) == 5 else f"{c[:5]}-{c[5:]}"),
    "FR": (re.compile(r"^\d{5}$"), str),
    "DE": (re.compile(r"^\d{5}$"), str),
    "ES": (re.compile(r"^\d{5}$"), str),
    "IT": (re.compile(r"^\d{5}$"), str),
    "BE": (re.compile(r"^\d{4}$"), str),
    "AT": (re.compile(r"^\d{4}$"), str),
    "CH": (re.compile(r"^\d{4}$"), str),
    "DK": (re.compile(r"^\d{4}$"), str),
    "NL": (re.compile(r"^\d{4}[A-Z]{2}$"), lambda c: f"{c[:4]} {c[4:]}"),
    "PL": (re.compile(r"^\d{5}$"), lambda c: f"{c[:2]}-{c[2:]}"),
    "PT": (re.compile(r"^\d{7}$"), lambda c: f"{c[:4]}-{c[4:]}"),
    "SE": (re.compile(r"^\d{5}$"), lambda c: f"{c[:3]} {c[3:]}"),
    "GB": (re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}$"), lambda c: f"{c[:-3]} {c[-3:]}"),
    "CA": (re.compile(r"^[A-Z]\d[A-Z]\d[A-Z]\d$"), lambda c: f"{c[:3]} {c[3:]}"),
}


@functools.lru_cache(maxsize=4_096)
def is_subdivision(country: str, code: str) -> bool:
    """Whether `code` is an ISO 3166-2 subdivision of `country` (AU + NSW, US + CA, FR + 69...)."""
    try:
        found = pycountry.subdivisions.get(code=f"{country}-{code}")  # type: ignore[no-untyped-call]
        return found is not None
    except (KeyError, LookupError):
        return False


def collapse(value: str) -> str:
    return _SPACES.sub(" ", value).strip()


def name_key(value: str | None) -> str:
    """Lower case, accents and punctuation removed: the form names are compared in."""
    if not value:
        return ""
    return _name_key(value)


@functools.lru_cache(maxsize=65_536)
def _name_key(value: str) -> str:
    # Names repeat a lot (imports and duplicate scoring compute the same ones over and over).
    decomposed = unicodedata.normalize("NFKD", value)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return collapse(re.sub(r"[^a-zA-Z ]+", " ", ascii_only)).lower()


EXTENSION = ";ext="


def phone_line(number: str) -> str:
    """The E.164 line of a stored phone number, without its extension (`+33612345678;ext=12`)."""
    return number.partition(EXTENSION)[0]


def canonical_email(email: str) -> str:
    """Email for duplicate blocking: Gmail ignores dots and +tags, everyone ignores +tags."""
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


@dataclass
class Normalizer:
    """Collects field errors; `raise_if_any()` turns them into one 422 problem."""

    default_region: str
    errors: list[FieldError] = field(default_factory=list)

    def fail(self, path: str, message: str, kind: str) -> None:
        self.errors.append(FieldError(field=path, message=message, type=kind))

    def raise_if_any(self) -> None:
        if self.errors:
            raise UnprocessableEntity(
                "The request is not valid; see errors.",
                extra={"errors": [error.model_dump() for error in self.errors]},
            )

    def email(self, value: str, path: str) -> str | None:
        try:
            result = validate_email(value.strip(), check_deliverability=False)
        except EmailNotValidError as exc:
            self.fail(path, str(exc), "value_error.email")
            return None
        return str(result.normalized).lower()

    def phone(self, value: str, path: str) -> str | None:
        try:
            parsed = phonenumbers.parse(value, self.default_region)
        except phonenumbers.NumberParseException as exc:
            self.fail(path, f"The phone number cannot be parsed: {exc}", "value_error.phone")
            return None
        if not phonenumbers.is_valid_number(parsed):
            self.fail(path, "The phone number is not a valid number.", "value_error.phone")
            return None
        number = str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
        if parsed.extension:
            # Kept, in RFC 3966's notation: an office line's extension reaches another person.
            return f"{number}{EXTENSION}{parsed.extension}"
        return number

    def country(self, value: str | None, path: str) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", code):
            self.fail(path, "The country must be an ISO 3166-1 alpha-2 code, e.g. FR.", "value_error.country")
            return None
        return code

    def postcode(self, value: str | None, country: str | None, path: str) -> str | None:
        if value is None:
            return None
        compact = re.sub(r"[\s-]+", "", value).upper()
        if not compact:
            return None
        known = _POSTCODES.get(country or "")
        if known is None:
            return collapse(value).upper()
        pattern, formatter = known
        if not pattern.fullmatch(compact):
            self.fail(path, f"The postcode is not a valid {country} postcode.", "value_error.postcode")
            return None
        return formatter(compact)

    def text(self, value: str | None, path: str, *, title: bool = False) -> str | None:
        """Spaces collapsed and Unicode composed (NFC: "e" + U+0301 is stored as "é", the form other systems
        and exact searches use); all-lower or all-upper text title-cased if `title`, except a short
        upper-case code (up to 3 letters, e.g. NSW, NY), which stays as written."""
        if value is None:
            return None
        cleaned = collapse(value if value.isascii() else unicodedata.normalize("NFC", value))
        if not cleaned.isprintable():  # rare: only then look at each character
            if _HIDDEN_CONTROLS.search(cleaned):
                self.fail(
                    path,
                    "Control characters (U+0000-U+001F, U+007F-U+009F) and bidirectional overrides or "
                    "isolates (U+202A-U+202E, U+2066-U+2069) are not allowed in text.",
                    "value_error.control_character",
                )
                return None
            if all(unicodedata.category(ch) == "Cf" or ch == " " for ch in cleaned):
                return None  # only invisible characters (zero-width spaces...): as blank as spaces
        if not cleaned:
            return None
        if title and (cleaned.islower() or cleaned.isupper()) and not _is_code(cleaned):
            cleaned = cleaned.title()
        return cleaned

    def region(self, value: str | None, country: str | None, path: str) -> str | None:
        """A region: an ISO 3166-2 subdivision code of the address's country is kept as the code in
        upper case (nsw -> NSW); other short codes stay as written; names are title-cased as text."""
        cleaned = self.text(value, path)
        if cleaned is None:
            return None
        code = cleaned.upper().replace(" ", "")
        if country and re.fullmatch(r"[A-Z0-9]{1,3}", code) and is_subdivision(country, code):
            return code
        return self.text(cleaned, path, title=True)


# An address `split_email` reads as a plain local part, one @-sign and a domain name (no quotes,
# display name, brackets, spaces or non-ASCII characters).
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")
MAX_ADDRESS_BYTES = 254


@functools.lru_cache(maxsize=4_096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """`validate_email_domain_name`'s (domain, ascii_domain) of a domain, or None when it refuses it
    (then the full validation runs again, for its message)."""
    try:
        info = validate_email_domain_name(
            domain,
            test_environment=email_validator.TEST_ENVIRONMENT,
            globally_deliverable=email_validator.GLOBALLY_DELIVERABLE,
        )
    except EmailNotValidError:
        return None
    return str(info["domain"]), str(info["ascii_domain"])


def plain_email(value: str) -> str | None:
    """`validate_email(value)` normalised and lower-cased, for the plain addresses that are almost all
    of an import (an ASCII dot-atom local part and a domain name), with each domain's check done once;
    None when the address is not of that form or not valid (the caller then runs `validate_email`).
    The same steps as `validate_email` without deliverability checks: the local part is accepted as is
    when it matches the library's own dot-atom pattern, the domain is normalised by the library, then
    the library's length limits."""
    local, at, domain = value.rpartition("@")
    if not at or not DOT_ATOM_TEXT.match(local) or not _PLAIN_DOMAIN.fullmatch(domain):
        return None
    forms = _domain_forms(domain)
    if forms is None:
        return None
    normalized, ascii_domain = f"{local}@{forms[0]}", f"{local}@{forms[1]}"
    if max(len(value), len(normalized.encode()), len(ascii_domain)) > MAX_ADDRESS_BYTES:
        return None
    return normalized.lower()


class BulkNormalizer(Normalizer):
    """`Normalizer` for bulk imports: the same results, plain email addresses checked faster."""

    def email(self, value: str, path: str) -> str | None:
        return plain_email(value.strip()) or super().email(value, path)


def _is_code(value: str) -> bool:
    return value.isupper() and len(value) <= 3 and value.isalnum()
