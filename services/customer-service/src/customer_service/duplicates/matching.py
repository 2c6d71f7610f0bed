"""What duplicate detection compares: the profile as a `Side`, and the comparison of two sides as one
discrete level per field (the comparison vector a Fellegi-Sunter model weighs, see `linkage`)."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from customer_service.customers.normalize import canonical_email, name_key, phone_line

NULL = -1  # the field is missing on one side or both: it counts neither for nor against

# Comparison levels of each field, lowest (disagreement) first; the index is the level.
LEVELS: dict[str, tuple[str, ...]] = {
    "first_name": ("different", "initial_or_phonetic", "similar", "exact"),
    "last_name": ("different", "initial_or_phonetic", "similar", "exact"),
    "birthday": ("different", "two_parts_equal", "day_month_swapped", "exact"),
    "locality": ("different", "postcode_close", "same_city", "same_postcode"),
    "street": ("different", "similar", "close", "exact"),
    "email": ("different", "similar", "exact"),
    "phone": ("different", "same_subscriber", "exact"),
    "external_id": ("different", "exact"),
}
FIELDS: tuple[str, ...] = tuple(LEVELS)
NAME_FIELDS = frozenset({"first_name", "last_name"})
# Fields with a term-frequency adjustment at their exact level (a shared rare value weighs more).
TF_FIELDS = ("first_name", "last_name", "locality")

# Street words written several ways; compared in one spelling.
_STREET_WORDS = {
    "st": "street",
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "dr": "drive",
    "ln": "lane",
    "pl": "place",
    "ct": "court",
    "cres": "crescent",
    "cct": "circuit",
    "hwy": "highway",
    "pde": "parade",
    "tce": "terrace",
    "blvd": "boulevard",
    "bd": "boulevard",
    "sq": "square",
    "cl": "close",
    "apt": "apartment",
    "bldg": "building",
}


@dataclass(frozen=True)
class Side:
    """What matching looks at on one profile (clear values, in memory only)."""

    first_name: str
    last_name: str
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    postcodes: tuple[str, ...]
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    birthday: str | None
    external_ids: tuple[tuple[str, str], ...] = ()


@functools.lru_cache(maxsize=65_536)
def street_key(line1: str | None) -> str:
    """The street in one spelling: ASCII lower case, house numbers kept, common words unabbreviated."""
    decomposed = unicodedata.normalize("NFKD", line1 or "")
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    words = re.sub(r"[^a-z0-9]+", " ", re.sub(r"(\d)([a-z])", r"\1 \2", ascii_only)).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)


_POSTCODE_GAPS = re.compile(r"[\s-]+")


def postcode_key(postcode: str | None) -> str:
    return _POSTCODE_GAPS.sub("", postcode or "").upper()


def side_of(
    first_name: str | None,
    last_name: str | None,
    contact: dict[str, Any],
    external_ids: list[tuple[str, str]] | None = None,
) -> Side:
    addresses = contact.get("addresses", [])
    return Side(
        first_name=name_key(first_name),
        last_name=name_key(last_name),
        emails=tuple(canonical_email(str(e["address"])) for e in contact.get("emails", [])),
        phones=tuple(str(p["number"]) for p in contact.get("phones", [])),
        postcodes=tuple(p for p in (postcode_key(a.get("postcode")) for a in addresses) if p),
        cities=tuple(c for c in (name_key(a.get("city")) for a in addresses) if c),
        streets=tuple(s for s in (street_key(a.get("line1")) for a in addresses) if s),
        birthday=contact.get("birthday"),
        external_ids=tuple(sorted(external_ids or ())),
    )


metaphone = functools.lru_cache(maxsize=131_072)(jellyfish.metaphone)


# name_level's answers, by first name then second: two dict lookups and no key to build per call, so
# that the ~40 lookups of a row's ~10 candidate pairs stay cheap; and room for the ~400,000 pairs of
# names that a file with a few hundred given names and surnames compares (an LRU of 262,144 pairs,
# the cache before, missed a quarter of the time on such a file: 4.3 us per `names` instead of 1.3).
# Emptied when it holds NAME_LEVELS_MAX answers.
NAME_LEVELS_MAX = 1_000_000
_name_levels: dict[str, dict[str, int]] = {}
_name_levels_held = 0


def name_level(a: str, b: str) -> int:
    """The comparison level of two names (normalised by `name_key`), cached."""
    levels = _name_levels.get(a)
    if levels is None:
        levels = _levels_of(a)
    level = levels.get(b)
    return _learn(levels, a, b) if level is None else level


def _levels_of(a: str) -> dict[str, int]:
    """The (new) cache of `a`'s levels against other names."""
    levels: dict[str, int] = {}
    _name_levels[a] = levels
    return levels


def _learn(levels: dict[str, int], a: str, b: str) -> int:
    """`_name_level(a, b)`, kept in `levels` (`a`'s cache); the whole cache is emptied when full."""
    global _name_levels_held
    if _name_levels_held >= NAME_LEVELS_MAX:
        _name_levels.clear()
        _name_levels_held = 0
        levels = _levels_of(a)
    level = levels[b] = _name_level(a, b)
    _name_levels_held += 1
    return level


def _name_level(a: str, b: str) -> int:
    if not a or not b:
        return NULL
    if a == b:
        return 3
    similarity = float(JaroWinkler.normalized_similarity(a, b))
    if similarity >= 0.92:
        return 2
    if similarity >= 0.8 or metaphone(a) == metaphone(b):
        return 1
    # An initial ("J" for "John") is consistent with the full name, weak evidence.
    if (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b)):
        return 1
    return 0


def names(a: Side, b: Side) -> tuple[int, int, bool]:
    """Levels of first and last name, comparing the names also crosswise (given name and surname
    swapped on one side); the orientation that agrees better wins. Also says whether it was swapped.
    (`name_level` four times, its cache read inline: this runs for every pair a write compares.)"""
    a_first, a_last, b_first, b_last = a.first_name, a.last_name, b.first_name, b.last_name
    of_first = _name_levels.get(a_first)
    if of_first is None:
        of_first = _levels_of(a_first)
    of_last = _name_levels.get(a_last)
    if of_last is None:
        of_last = _levels_of(a_last)
    first = of_first.get(b_first)
    if first is None:
        first = _learn(of_first, a_first, b_first)
    last = of_last.get(b_last)
    if last is None:
        last = _learn(of_last, a_last, b_last)
    crossed_first = of_first.get(b_last)
    if crossed_first is None:
        crossed_first = _learn(of_first, a_first, b_last)
    crossed_last = of_last.get(b_first)
    if crossed_last is None:
        crossed_last = _learn(of_last, a_last, b_first)
    crossed = (crossed_first if crossed_first > 0 else 0) + (crossed_last if crossed_last > 0 else 0)
    if crossed > (first if first > 0 else 0) + (last if last > 0 else 0) + 1:
        return crossed_first, crossed_last, True
    return first, last, False


def birthday_level(a: str | None, b: str | None) -> int:
    if not a or not b:
        return NULL
    if a == b:
        return 3
    ya, ma, da = a.split("-")
    yb, mb, db = b.split("-")
    if ya == yb and ma == db and da == mb:
        return 2
    if (ya == yb) + (ma == mb) + (da == db) == 2:
        return 1
    return 0


def _close_places(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Place names one slip apart: a typo, or a space added or lost ("dal by", "park orcaards")."""
    for x in a:
        for y in b:
            if min(len(x), len(y)) >= 4 and (
                x.replace(" ", "") == y.replace(" ", "") or JaroWinkler.normalized_similarity(x, y) >= 0.9
            ):
                return True
    return False


def locality_level(a: Side, b: Side) -> tuple[int, str | None]:
    """Postcode and city as one comparison (they say the same thing; counting both would count one
    agreement twice). Also returns the shared postcode (for its term-frequency adjustment)."""
    a_postcodes, b_postcodes, a_cities, b_cities = a.postcodes, b.postcodes, a.cities, b.cities
    if not (a_postcodes and b_postcodes) and not (a_cities and b_cities):
        return NULL, None
    shared = [p for p in a_postcodes if p in b_postcodes]
    if shared:
        return 3, min(shared)
    for city in a_cities:
        if city in b_cities:
            return 2, None
    # One mistyped or two transposed characters of a postcode, or a mistyped city.
    for x in a.postcodes:
        for y in b.postcodes:
            if len(x) == len(y) and OSA.distance(x, y) <= 1:
                return 1, None
    if _close_places(a.cities, b.cities):
        return 1, None
    return 0, None


def street_level(a: Side, b: Side) -> int:
    """Exact; close (words reordered or one slip, spaces ignored, or one address the other with
    words added, like a missing second line, when it keeps the house number); similar; different."""
    if not a.streets or not b.streets:
        return NULL
    best = 0
    for x in a.streets:
        for y in b.streets:
            if x == y:
                return 3
            ratio = max(fuzz.token_sort_ratio(x, y), fuzz.ratio(x.replace(" ", ""), y.replace(" ", "")))
            if ratio >= 90 or _extends(x, y):
                best = max(best, 2)
            elif ratio >= 75:
                best = max(best, 1)
    return best


def _extends(x: str, y: str) -> bool:
    """One address is the other with words added (a second line kept on one record only)."""
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    words = short.split()
    return (
        len(words) >= 2
        and fuzz.token_set_ratio(short, long) >= 95
        and (not words[0].isdigit() or words[0] == long.split()[0])
    )


def email_level(a: Side, b: Side) -> int:
    """Exact (canonical) address; or the same domain with the local part one typo away."""
    a_emails, b_emails = a.emails, b.emails
    if not a_emails or not b_emails:
        return NULL
    for x in a_emails:
        if x in b_emails:
            return 2
    for x in a_emails:
        local_x, _, domain_x = x.partition("@")
        for y in b_emails:
            local_y, _, domain_y = y.partition("@")
            close = domain_x == domain_y and min(len(local_x), len(local_y)) >= 4
            if close and Levenshtein.distance(local_x, local_y) <= 1:
                return 1
    return 0


def phone_level(a: Side, b: Side) -> int:
    a_phones, b_phones = a.phones, b.phones
    if not a_phones or not b_phones:
        return NULL
    for x in a_phones:
        if x in b_phones:
            return 2
    for x in a_phones:
        subscriber = phone_line(x)[-8:]
        for y in b_phones:
            if phone_line(y)[-8:] == subscriber:
                return 1
    return 0


def external_level(a: Side, b: Side) -> int:
    if not a.external_ids or not b.external_ids:
        return NULL
    sources = {s for s, _ in a.external_ids} & {s for s, _ in b.external_ids}
    if not sources:
        return NULL
    return 1 if set(a.external_ids) & set(b.external_ids) else 0


@dataclass(frozen=True)
class Comparison:
    """The comparison vector of two sides (a level per field, NULL when not comparable), the values
    that agreed exactly (for term-frequency adjustment), and whether the names were swapped."""

    levels: tuple[int, ...]
    agreed: dict[str, str]
    names_swapped: bool


def compare(a: Side, b: Side, named: tuple[int, int, bool] | None = None) -> Comparison:
    """The comparison vector of `a` and `b` (`named`: their `names(a, b)`, when already known)."""
    first, last, swapped = named or names(a, b)
    locality, postcode = locality_level(a, b)
    agreed: dict[str, str] = {}
    if first == 3:
        agreed["first_name"] = b.last_name if swapped else b.first_name
    if last == 3:
        agreed["last_name"] = b.first_name if swapped else b.last_name
    if postcode is not None:
        agreed["locality"] = postcode
    street = street_level(a, b)
    if locality == 0 and street == 0:
        # A move changes the street and the place together: one disagreement, counted once.
        street = NULL
    levels = (
        first,
        last,
        birthday_level(a.birthday, b.birthday),
        locality,
        street,
        email_level(a, b),
        phone_level(a, b),
        external_level(a, b),
    )
    return Comparison(levels, agreed, swapped)


def tf_values(side: Side) -> dict[str, list[str]]:
    """The values of a side that term frequencies are counted on."""
    return {
        "first_name": [side.first_name] if side.first_name else [],
        "last_name": [side.last_name] if side.last_name else [],
        "locality": list(dict.fromkeys(side.postcodes)),
    }


def blocking_values(side: Side) -> set[str]:
    """Clear blocking values of a profile, one per rule and value (a union of rules: a pair is compared
    when it shares any of them, so one typo or a changed postcode does not hide it). Names enter in
    a swap-proof way (either name with the other field). `customers.blocking_keys` stores them hashed."""
    values: set[str] = set()
    values.update(f"e:{e}" for e in side.emails)
    values.update(f"p:{p}" for p in side.phones)
    values.update(f"x:{s}|{i}" for s, i in side.external_ids)
    codes = sorted({metaphone(n) for n in (side.first_name, side.last_name) if n} - {""})
    born = _date_key(side.birthday)
    if len(codes) == 2:
        values.add(f"ph:{codes[0]}|{codes[1]}")
    for code in codes:
        for postcode in side.postcodes:
            values.add(f"np:{code}|{postcode}")
        if born:
            values.add(f"nd:{code}|{born}")
    for code in codes:
        for city in side.cities:
            values.add(f"nc:{code}|{city}")
    if born:
        values.update(f"pd:{postcode}|{born}" for postcode in side.postcodes)
        values.update(f"bc:{city}|{born}" for city in side.cities)
        # Either name's initial: a replaced or missing given name (or surname) keeps the other's.
        values.update(f"bi:{born}|{n[0]}" for n in (side.first_name, side.last_name) if n)
    for street in side.streets:
        values.update(f"ac:{street}|{place}" for place in (*side.postcodes, *side.cities))
    return values


def _date_key(birthday: str | None) -> str | None:
    """The birthday with day and month in a fixed order, so a day/month swap keeps the key."""
    if not birthday:
        return None
    year, month, day = birthday.split("-")
    return f"{year}-{min(month, day)}-{max(month, day)}"
