"""Generated people without email or phone (names, street, suburb, postcode, state, date of birth) and
their duplicates made the ways an old system's records differ: typos, phonetic spellings, given name
and surname swapped, day and month transposed, a changed postcode or a move, abbreviations, missing
values, several records per person. Hard negatives are generated too: names drawn from a skewed
(Zipf) distribution so common names repeat, people sharing a few hundred postcodes, households
(same surname and address, other given name and birthday) and twins (same birthday too).

Nothing here knows how the project scores pairs; the modifications are chosen from a fixed list with
fixed probabilities (seeded), as record-linkage benchmark generators do."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from faker import Faker

LOCALES = {"en_AU": "AU", "en_US": "US", "en_GB": "GB"}
KEYBOARD = {
    "a": "qswz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
PHONETIC = [
    ("ph", "f"),
    ("ck", "k"),
    ("c", "k"),
    ("y", "ie"),
    ("ie", "y"),
    ("ei", "ie"),
    ("ou", "u"),
    ("ll", "l"),
    ("nn", "n"),
    ("tt", "t"),
    ("ss", "s"),
    ("mm", "m"),
    ("th", "t"),
    ("z", "s"),
]
ABBREVIATIONS = {
    "Street": "St",
    "Road": "Rd",
    "Avenue": "Ave",
    "Drive": "Dr",
    "Lane": "Ln",
    "Place": "Pl",
    "Court": "Ct",
    "Crescent": "Cres",
    "Parade": "Pde",
    "Terrace": "Tce",
    "Highway": "Hwy",
}


@dataclass
class Record:
    person: int
    data: dict[str, Any]


def _zipf_pool(rng: random.Random, values: list[str], exponent: float) -> tuple[list[str], list[float]]:
    unique = list(dict.fromkeys(values))
    rng.shuffle(unique)
    return unique, [1.0 / (rank + 1) ** exponent for rank in range(len(unique))]


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text))
    kind = rng.choice(["substitute", "delete", "insert", "transpose"])
    ch = text[i].lower()
    if kind == "substitute":
        return text[:i] + rng.choice(KEYBOARD.get(ch, "aeiou")) + text[i + 1 :]
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    if kind == "insert":
        return text[:i] + rng.choice(KEYBOARD.get(ch, "aeiou")) + text[i:]
    j = min(i + 1, len(text) - 1)
    return text[:i] + text[j] + text[i] + text[j + 1 :] if j != i else text


def _phonetic(rng: random.Random, text: str) -> str:
    options = [(a, b) for a, b in PHONETIC if a in text.lower()]
    if not options:
        return _typo(rng, text)
    a, b = rng.choice(options)
    index = text.lower().index(a)
    replaced = text[:index] + b + text[index + len(a) :]
    return replaced[:1].upper() + replaced[1:] if text[:1].isupper() else replaced


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.fakers = {locale: Faker(locale) for locale in LOCALES}
        for faker in self.fakers.values():
            faker.seed_instance(seed)
        self.first_names: dict[str, tuple[list[str], list[float]]] = {}
        self.last_names: dict[str, tuple[list[str], list[float]]] = {}
        self.localities: dict[str, list[tuple[str, str, str]]] = {}
        for locale, faker in self.fakers.items():
            self.first_names[locale] = _zipf_pool(rng, [faker.first_name() for _ in range(3000)], 1.0)
            self.last_names[locale] = _zipf_pool(rng, [faker.last_name() for _ in range(4000)], 0.9)
            states = [faker.state_abbr() if hasattr(faker, "state_abbr") else "" for _ in range(8)]
            self.localities[locale] = [
                (faker.city(), faker.postcode(), rng.choice(states)) for _ in range(300)
            ]

    def _person(self, locale: str) -> dict[str, Any]:
        rng, faker = self.rng, self.fakers[locale]
        names, weights = self.first_names[locale]
        surnames, surname_weights = self.last_names[locale]
        city, postcode, state = rng.choice(self.localities[locale])
        return {
            "first_name": rng.choices(names, weights)[0],
            "last_name": rng.choices(surnames, surname_weights)[0],
            "birthday": f"{rng.randrange(1930, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "line1": faker.street_address().replace("\n", " "),
            "city": city,
            "postcode": postcode,
            "region": state,
            "country": LOCALES[locale],
        }

    def _household_member(self, locale: str, other: dict[str, Any], twin: bool) -> dict[str, Any]:
        person = self._person(locale)
        for key in ("last_name", "line1", "city", "postcode", "region"):
            person[key] = other[key]
        if twin:
            person["birthday"] = other["birthday"]
        return person

    def _move(self, locale: str, record: dict[str, Any]) -> None:
        fresh = self._person(locale)
        for key in ("line1", "city", "postcode", "region"):
            record[key] = fresh[key]

    def duplicate(self, locale: str, original: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        record = dict(original)
        changes = rng.choices(
            [
                "first_typo",
                "last_typo",
                "first_phonetic",
                "last_phonetic",
                "swap_names",
                "birthday_swap",
                "birthday_typo",
                "postcode_typo",
                "move",
                "street_abbrev",
                "street_typo",
                "city_typo",
                "missing",
                "missing",
            ],
            k=rng.choice([1, 2, 2, 3, 3, 4]),
        )
        for change in changes:
            if change == "first_typo" and record.get("first_name"):
                record["first_name"] = _typo(rng, record["first_name"])
            elif change == "last_typo" and record.get("last_name"):
                record["last_name"] = _typo(rng, record["last_name"])
            elif change == "first_phonetic" and record.get("first_name"):
                record["first_name"] = _phonetic(rng, record["first_name"])
            elif change == "last_phonetic" and record.get("last_name"):
                record["last_name"] = _phonetic(rng, record["last_name"])
            elif change == "swap_names":
                record["first_name"], record["last_name"] = record.get("last_name"), record.get("first_name")
            elif change == "birthday_swap" and record.get("birthday"):
                year, month, day = record["birthday"].split("-")
                if int(day) <= 12:
                    record["birthday"] = f"{year}-{day}-{month}"
            elif change == "birthday_typo" and record.get("birthday"):
                year, month, day = record["birthday"].split("-")
                part = rng.choice(["year", "month", "day"])
                if part == "year":
                    year = str(int(year) + rng.choice([-10, -1, 1, 10]))
                elif part == "month":
                    month = f"{rng.randrange(1, 13):02d}"
                else:
                    day = f"{rng.randrange(1, 29):02d}"
                record["birthday"] = f"{year}-{month}-{day}"
            elif change == "postcode_typo" and record.get("postcode"):
                code = record["postcode"]
                digits = [i for i, c in enumerate(code) if c.isdigit()]
                if digits:
                    i = rng.choice(digits)
                    record["postcode"] = code[:i] + str(rng.randrange(10)) + code[i + 1 :]
            elif change == "move":
                self._move(locale, record)
            elif change == "street_abbrev" and record.get("line1"):
                for long, short in ABBREVIATIONS.items():
                    record["line1"] = record["line1"].replace(long, short)
            elif change == "street_typo" and record.get("line1"):
                record["line1"] = _typo(rng, record["line1"])
            elif change == "city_typo" and record.get("city"):
                record["city"] = _typo(rng, record["city"])
            elif change == "missing":
                field = rng.choice(
                    ["first_name", "last_name", "birthday", "line1", "city", "postcode", "region"]
                )
                record[field] = None
        if rng.random() < 0.2:
            record = {
                k: (v.upper() if isinstance(v, str) and k != "birthday" else v) for k, v in record.items()
            }
        return record

    def generate(self, people: int) -> list[Record]:
        rng = self.rng
        records: list[Record] = []
        originals: list[tuple[str, dict[str, Any]]] = []
        for person in range(people):
            locale = rng.choice(list(LOCALES))
            if originals and rng.random() < 0.12:
                other_locale, other = rng.choice(originals)
                data = self._household_member(other_locale, other, twin=rng.random() < 0.1)
                locale = other_locale
            else:
                data = self._person(locale)
            originals.append((locale, data))
            records.append(Record(person, data))
            # Several records per person for about 40% of them: 1 (most), 2, 3 or 4 more.
            if rng.random() < 0.4:
                for _ in range(rng.choices([1, 2, 3, 4], [0.6, 0.25, 0.1, 0.05])[0]):
                    records.append(Record(person, self.duplicate(locale, data)))
        rng.shuffle(records)
        return records


def to_customer(data: dict[str, Any]) -> dict[str, Any]:
    """The record as a customer-service create body (no email, no phone)."""
    body: dict[str, Any] = {k: data[k] for k in ("first_name", "last_name", "birthday") if data.get(k)}
    if any(data.get(k) for k in ("line1", "city", "postcode")):
        body["addresses"] = [
            {
                "kind": "shipping",
                "line1": data.get("line1") or "",
                "city": data.get("city") or "",
                "postcode": data.get("postcode"),
                "region": data.get("region"),
                "country": data.get("country") or "",
            }
        ]
    return body
