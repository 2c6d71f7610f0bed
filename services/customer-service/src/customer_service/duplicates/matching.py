"""Field-by-field similarity of two profiles (rapidfuzz, jellyfish) and the total score."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from customer_service.customers.normalize import canonical_email, name_key

# Weight of each field in the total; a field counts only when both profiles have it.
WEIGHTS: dict[str, float] = {
    "first_name": 1.0,
    "last_name": 1.5,
    "email": 2.0,
    "phone": 2.0,
    "postcode": 1.0,
    "street": 1.0,
    "birthday": 1.5,
}
# Different first names with everything else shared is a household, not one person.
FIRST_NAME_FLOOR = 0.75
HOUSEHOLD_CAP = 0.7
# Names alone (or one field) are not evidence enough to call two profiles one person.
CONTACT_FIELDS = frozenset({"email", "phone", "postcode", "street", "birthday"})
MIN_FIELDS = 3
THIN_EVIDENCE_CAP = 0.6


@dataclass(frozen=True)
class Side:
    """What matching looks at on one profile (clear values, in memory only)."""

    first_name: str
    last_name: str
    emails: list[str]
    phones: list[str]
    postcodes: list[str]
    streets: list[str]
    birthday: str | None


def side_of(first_name: str | None, last_name: str | None, contact: dict[str, Any]) -> Side:
    return Side(
        first_name=name_key(first_name),
        last_name=name_key(last_name),
        emails=[str(e["address"]) for e in contact.get("emails", [])],
        phones=[str(p["number"]) for p in contact.get("phones", [])],
        postcodes=[
            str(a["postcode"]).replace(" ", "").replace("-", "")
            for a in contact.get("addresses", [])
            if a.get("postcode")
        ],
        streets=[name_key(f"{a.get('line1', '')} {a.get('city', '')}") for a in contact.get("addresses", [])],
        birthday=contact.get("birthday"),
    )


# Names repeat a lot across the pairs scored; their phonetic keys are computed once.
_metaphone = functools.lru_cache(maxsize=65_536)(jellyfish.metaphone)


def _name(a: str, b: str) -> float:
    if a == b:
        return 1.0
    similarity = float(JaroWinkler.normalized_similarity(a, b))
    if _metaphone(a) == _metaphone(b):
        similarity = max(similarity, 0.9)
    return similarity


def could_reach(a: Side, b: Side, threshold: float) -> bool:
    """False when `score(a, b)` is certainly below `threshold` because one of its caps applies (too few
    shared fields, or different first names); a cheap test that spares scoring most pairs of a block."""
    fields = {
        "first_name": bool(a.first_name and b.first_name),
        "last_name": bool(a.last_name and b.last_name),
        "email": bool(a.emails and b.emails),
        "phone": bool(a.phones and b.phones),
        "postcode": bool(a.postcodes and b.postcodes),
        "street": bool(a.streets and b.streets),
        "birthday": bool(a.birthday and b.birthday),
    }
    present = {name for name, both in fields.items() if both}
    if threshold > THIN_EVIDENCE_CAP and (len(present) < MIN_FIELDS or not CONTACT_FIELDS & present):
        return False
    if threshold > HOUSEHOLD_CAP and "first_name" in present:
        return round(_name(a.first_name, b.first_name), 3) >= FIRST_NAME_FLOOR
    return True


def _email(a: list[str], b: list[str]) -> float:
    best = 0.0
    for x in a:
        for y in b:
            if canonical_email(x) == canonical_email(y):
                return 1.0
            best = max(best, float(Levenshtein.normalized_similarity(x, y)))
    return best


def _phone(a: list[str], b: list[str]) -> float:
    best = 0.0
    for x in a:
        for y in b:
            if x == y:
                return 1.0
            if x[-8:] == y[-8:]:
                best = max(best, 0.9)
            else:
                best = max(best, float(Levenshtein.normalized_similarity(x, y)) * 0.8)
    return best


def _birthday(a: str, b: str) -> float:
    if a == b:
        return 1.0
    ya, ma, da = a.split("-")
    yb, mb, db = b.split("-")
    if ya == yb and ma == db and da == mb:
        return 0.8  # day and month swapped
    if Levenshtein.distance(a, b) == 1:
        return 0.7
    return 0.0


def score(a: Side, b: Side) -> tuple[float, dict[str, float]]:
    """The weighted mean of the similarities of the fields both sides have, and each similarity."""
    evidence: dict[str, float] = {}
    if a.first_name and b.first_name:
        evidence["first_name"] = _name(a.first_name, b.first_name)
    if a.last_name and b.last_name:
        evidence["last_name"] = _name(a.last_name, b.last_name)
    if a.emails and b.emails:
        evidence["email"] = _email(a.emails, b.emails)
    if a.phones and b.phones:
        evidence["phone"] = _phone(a.phones, b.phones)
    if a.postcodes and b.postcodes:
        evidence["postcode"] = 1.0 if set(a.postcodes) & set(b.postcodes) else 0.0
    if a.streets and b.streets:
        evidence["street"] = max(fuzz.token_sort_ratio(x, y) / 100 for x in a.streets for y in b.streets)
    if a.birthday and b.birthday:
        evidence["birthday"] = _birthday(a.birthday, b.birthday)
    evidence = {k: round(v, 3) for k, v in evidence.items()}
    if not evidence:
        return 0.0, evidence
    total = sum(WEIGHTS[k] * v for k, v in evidence.items()) / sum(WEIGHTS[k] for k in evidence)
    if evidence.get("first_name", 1.0) < FIRST_NAME_FLOOR:
        total = min(total, HOUSEHOLD_CAP)
    if len(evidence) < MIN_FIELDS or not CONTACT_FIELDS & evidence.keys():
        total = min(total, THIN_EVIDENCE_CAP)
    return round(total, 3), evidence
