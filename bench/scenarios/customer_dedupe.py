"""Duplicate detection quality: precision, recall and F1 of customer-service's blocking + scoring on a
generated customer base with known duplicates, against exact-email matching as the baseline.

Profiles are generated with Faker (fixed seed); a share of them gets a duplicate made the ways real
duplicates arise: a typo or a transposition in a name, another email (or a typo in it), the phone
written another way, missing fields. Every profile goes through the service's own normalisation
(`normalize_create`), blocking keys (`blocking_keys`) and pair scoring (`matching.score`); a pair is
predicted a duplicate when its score reaches the service's default `duplicate_threshold`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from faker import Faker

from customer_service.config import Settings
from customer_service.context import CustomerContext
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.normalize import canonical_email, name_key
from customer_service.customers.schemas import CustomerCreate
from customer_service.duplicates.matching import score, side_of
from servicekit.errors import ServiceError

NAME = "customer_dedupe"
DESCRIPTION = (
    "Duplicate detection precision / recall / F1 (blocking + field scoring) on generated customers with "
    "known duplicates, against exact-email matching"
)
TIMEOUT_S = 600.0
SEED = 20261122
LOCALES = {"fr_FR": "FR", "de_DE": "DE", "en_GB": "GB", "es_ES": "ES", "it_IT": "IT", "nl_NL": "NL"}


@dataclass
class Person:
    key: int
    data: dict[str, Any]


def _phone(fake: Faker, rng: random.Random, region: str) -> str | None:
    import phonenumbers

    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return None
    digits = str(example.national_number)
    candidate = digits[:-6] + f"{rng.randrange(10**6):06d}"
    number = phonenumbers.parse(f"+{example.country_code}{candidate}")
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _base(fake: Faker, rng: random.Random, country: str) -> dict[str, Any]:
    first, last = fake.first_name(), fake.last_name()
    local = f"{name_key(first)}.{name_key(last)}".replace(" ", "")
    data: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "emails": [{"address": f"{local}{rng.randrange(1000)}@{fake.free_email_domain()}"}],
        "country": country,
    }
    phone = _phone(fake, rng, country)
    if phone and rng.random() < 0.85:
        data["phones"] = [{"number": phone}]
    if rng.random() < 0.9:
        data["addresses"] = [
            {
                "kind": "shipping",
                "line1": fake.street_address(),
                "city": fake.city(),
                "postcode": fake.postcode(),
                "country": country,
            }
        ]
    if rng.random() < 0.6:
        data["birthday"] = (
            f"{rng.randrange(1950, 2004)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        )
    return data


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.choice(["substitute", "delete", "insert", "transpose"])
    if kind == "substitute":
        return text[:i] + rng.choice("aeioulnrst") + text[i + 1 :]
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    if kind == "insert":
        return text[:i] + rng.choice("aeioulnrst") + text[i:]
    j = min(i + 1, len(text) - 1)
    return text[:i] + text[j] + text[i] + text[j + 1 :]


def _duplicate(rng: random.Random, original: dict[str, Any]) -> dict[str, Any]:
    """Two or three of: a name typo/transposition, another or mistyped email, the phone reformatted,
    a field left out, the address rewritten in another case."""
    copy: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in original.items()}
    changes = rng.sample(
        ["first_typo", "last_typo", "email", "phone_format", "missing", "address_case"], k=rng.randint(2, 3)
    )
    for change in changes:
        if change == "first_typo":
            copy["first_name"] = _typo(rng, copy["first_name"])
        elif change == "last_typo":
            copy["last_name"] = _typo(rng, copy["last_name"])
        elif change == "email" and copy.get("emails"):
            local, _, domain = copy["emails"][0]["address"].partition("@")
            copy["emails"] = [
                {
                    "address": rng.choice(
                        [f"{_typo(rng, local)}@{domain}", f"{local}.shop@{domain}", f"{local}@gmx.net"]
                    )
                }
            ]
        elif change == "phone_format" and copy.get("phones"):
            number = copy["phones"][0]["number"]
            copy["phones"] = [{"number": f"{number[:3]} {number[3:6]} {number[6:]}"}]
        elif change == "missing":
            field = rng.choice(
                [f for f in ("phones", "birthday", "addresses", "emails") if f in copy] or ["country"]
            )
            copy.pop(field, None)
        elif change == "address_case" and copy.get("addresses"):
            address = dict(copy["addresses"][0])
            address["line1"] = str(address["line1"]).upper()
            address["city"] = str(address["city"]).lower()
            copy["addresses"] = [address]
    return copy


def generate(count: int, duplicate_share: float) -> list[Person]:
    rng = random.Random(SEED)
    fakers = {locale: Faker(locale) for locale in LOCALES}
    for fake in fakers.values():
        fake.seed_instance(SEED)
    people: list[Person] = []
    for key in range(count):
        locale = rng.choice(list(LOCALES))
        people.append(Person(key, _base(fakers[locale], rng, LOCALES[locale])))
    originals = list(people)
    for original in rng.sample(originals, int(count * duplicate_share)):
        people.append(Person(original.key, _duplicate(rng, original.data)))
    rng.shuffle(people)
    return people


@dataclass
class Prepared:
    index: int
    key: int
    side: Any
    blocks: set[str]
    email: str | None


def prepare(context: CustomerContext, people: list[Person]) -> list[Prepared]:
    prepared = []
    for index, person in enumerate(people):
        try:
            profile = customers.normalize_create(context, CustomerCreate.model_validate(person.data))
        except ServiceError as exc:
            # Faker (or a generated typo) made a value the validation refuses: drop those fields.
            bad = {str(e["field"]).split(".")[1] for e in exc.extra.get("errors", [])}
            data = {k: v for k, v in person.data.items() if k not in bad}
            profile = customers.normalize_create(context, CustomerCreate.model_validate(data))
        customer = Customer(
            id=str(index),
            first_name=profile.fields.get("first_name"),
            last_name=profile.fields.get("last_name"),
            created_at=customers.now(),
            updated_at=customers.now(),
        )
        document = profile.contact.to_document()
        emails = profile.contact.emails
        prepared.append(
            Prepared(
                index=index,
                key=person.key,
                side=side_of(customer.first_name, customer.last_name, document),
                blocks=customers.blocking_keys(context, customer, profile.contact),
                email=canonical_email(emails[0]["address"]) if emails else None,
            )
        )
    return prepared


def _scores(prepared: list[Prepared]) -> tuple[dict[tuple[int, int], float], int]:
    """Score of every pair that shares a blocking key; and how many pairs were compared."""
    blocks: dict[str, list[int]] = {}
    for item in prepared:
        for key in item.blocks:
            blocks.setdefault(key, []).append(item.index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pairs.add((a, b) if a < b else (b, a))
    return {(a, b): score(prepared[a].side, prepared[b].side)[0] for a, b in pairs}, len(pairs)


def _quality(predicted: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    true_positives = len(predicted & truth)
    precision = true_positives / len(predicted) if predicted else 0.0
    recall = true_positives / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": true_positives,
        "predicted": len(predicted),
        "actual": len(truth),
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 2_000 if quick else 10_000
    share = 0.2
    settings = Settings()
    context = CustomerContext.from_settings(settings)
    started = time.perf_counter()
    people = generate(count, share)
    prepared = prepare(context, people)
    prepare_s = time.perf_counter() - started
    truth = _truth_pairs(prepared)
    started = time.perf_counter()
    scores, compared = _scores(prepared)
    scoring_s = time.perf_counter() - started
    at_threshold = _quality({p for p, s in scores.items() if s >= settings.duplicate_threshold}, truth)
    at_auto = _quality({p for p, s in scores.items() if s >= settings.auto_merge_threshold}, truth)
    by_email: dict[str, list[int]] = {}
    for item in prepared:
        if item.email:
            by_email.setdefault(item.email, []).append(item.index)
    exact = {(a, b) for members in by_email.values() for i, a in enumerate(members) for b in members[i + 1 :]}
    baseline = _quality(exact, truth)
    all_pairs = len(prepared) * (len(prepared) - 1) // 2
    headline = {
        "F1 (blocking + scoring)": at_threshold["f1"],
        "precision": at_threshold["precision"],
        "recall": at_threshold["recall"],
        "F1 exact-email baseline": baseline["f1"],
        "F1 ratio scoring/baseline": at_threshold["f1"] / baseline["f1"] if baseline["f1"] else None,
    }
    return {
        "parameters": {
            "profiles": len(prepared),
            "originals": count,
            "duplicate_share": share,
            "duplicate_threshold": settings.duplicate_threshold,
            "auto_merge_threshold": settings.auto_merge_threshold,
            "seed": SEED,
        },
        "headline": headline,
        "figures": {
            "at_duplicate_threshold": at_threshold,
            "at_auto_merge_threshold": at_auto,
            "exact_email_baseline": baseline,
            "pairs_compared": compared,
            "pairs_possible": all_pairs,
            "reduction_ratio": 1 - compared / all_pairs,
            "prepare_s": prepare_s,
            "scoring_s": scoring_s,
        },
        "notes": [
            "Truth: pairs generated from one original. Duplicates differ by 2-3 of: name typo or "
            "transposition, another or mistyped email, reformatted phone, a missing field, address case.",
            "Predicted: pairs sharing a blocking key whose score reaches duplicate_threshold (the service's "
            "default); at_auto_merge_threshold shows the precision of automatic merges.",
        ],
        "table": {
            "columns": ["method", "precision", "recall", "F1", "predicted", "actual"],
            "rows": [
                [name, q["precision"], q["recall"], q["f1"], q["predicted"], q["actual"]]
                for name, q in (
                    ("scoring >= duplicate_threshold", at_threshold),
                    ("scoring >= auto_merge_threshold", at_auto),
                    ("exact canonical email (baseline)", baseline),
                )
            ],
            "caption": f"{len(prepared)} profiles, {compared} pairs compared of {all_pairs}",
        },
    }


def _truth_pairs(prepared: list[Prepared]) -> set[tuple[int, int]]:
    by_key: dict[int, list[int]] = {}
    for item in prepared:
        by_key.setdefault(item.key, []).append(item.index)
    return {
        (a, b) if a < b else (b, a)
        for members in by_key.values()
        for i, a in enumerate(members)
        for b in members[i + 1 :]
    }
