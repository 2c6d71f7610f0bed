"""The import's faster email check (`BulkNormalizer`) gives exactly what `Normalizer` gives: the same
normalised address for every address it accepts, and the same error (from the library's full check)
for every address it refuses; and the faster name/phone/email comparisons give the same levels."""

import random
import string

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from customer_service.config import Settings
from customer_service.context import CustomerContext
from customer_service.customers.normalize import BulkNormalizer, Normalizer, plain_email
from customer_service.customers.service import blocking_keys_of_side
from customer_service.duplicates.matching import Side, email_level, phone_level, side_of

# Characters that make addresses interesting for the checker: dot-atom text, dots, the @-sign,
# quotes, brackets, spaces, hyphens, digits and a few non-ASCII letters.
_ALPHABET = string.ascii_letters + string.digits + "._-+@\"'<>[] !#$%&*/=?^`{|}~éß中"
_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12)


def _both(value: str) -> tuple[tuple[str | None, list[str]], tuple[str | None, list[str]]]:
    slow, fast = Normalizer("FR"), BulkNormalizer("FR")
    slow_result, fast_result = slow.email(value, "body.email"), fast.email(value, "body.email")
    return (
        (slow_result, [e.message for e in slow.errors]),
        (fast_result, [e.message for e in fast.errors]),
    )


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40))
@example("Jean.Dupont@Example.COM")
@example("a..b@example.com")
@example(".a@example.com")
@example("a@-example.com")
@example("a@example")
@example("a@example.123")
@example("a@localhost.test")
@example("a@xn--bcher-kva.example")
@example("postmaster@example.com")
@example("x" * 64 + "@example.com")
@example("x" * 65 + "@example.com")
@example("x" * 60 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + ".com")
@example(" spaced@example.com ")
def test_bulk_email_check_matches_the_full_check_on_any_text(value: str) -> None:
    slow, fast = _both(value)
    assert fast == slow


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=70),
    st.lists(_LABEL, min_size=1, max_size=5),
)
def test_bulk_email_check_matches_the_full_check_on_plain_addresses(local: str, labels: list[str]) -> None:
    value = f"{local}@{'.'.join(labels)}"
    slow, fast = _both(value)
    assert fast == slow


def test_plain_addresses_take_the_fast_path_and_others_do_not() -> None:
    assert plain_email("Jean.Dupont@Example.COM") == "jean.dupont@example.com"
    assert plain_email('"quoted"@example.com') is None
    assert plain_email("Jean <jean@example.com>") is None
    assert plain_email("jean@exämple.com") is None
    assert plain_email("jean@localhost") is None  # refused by the library: the full check says why


def _side(emails: tuple[str, ...] = (), phones: tuple[str, ...] = ()) -> Side:
    return Side("", "", emails, phones, (), (), (), None)


def _email_level_by_sets(a: Side, b: Side) -> int:
    # The definition the faster code replaces (sets built per pair).
    if not a.emails or not b.emails:
        return -1
    if set(a.emails) & set(b.emails):
        return 2
    for x in a.emails:
        local_x, _, domain_x = x.partition("@")
        for y in b.emails:
            local_y, _, domain_y = y.partition("@")
            close = domain_x == domain_y and min(len(local_x), len(local_y)) >= 4
            if close and Levenshtein.distance(local_x, local_y) <= 1:
                return 1
    return 0


def _phone_level_by_sets(a: Side, b: Side) -> int:
    if not a.phones or not b.phones:
        return -1
    if set(a.phones) & set(b.phones):
        return 2
    if {p[-8:] for p in a.phones} & {p[-8:] for p in b.phones}:
        return 1
    return 0


_PHONES = st.lists(
    st.sampled_from(["+33612345678", "+33712345678", "+33612345679", "+4912345678"]), max_size=3
)
_EMAILS = st.lists(st.sampled_from(["ab.cd@x.fr", "ab.ce@x.fr", "zz@x.fr", "ab.cd@y.fr"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(_PHONES, _PHONES)
def test_phone_level_is_the_set_definition(a: list[str], b: list[str]) -> None:
    left, right = _side(phones=tuple(a)), _side(phones=tuple(b))
    assert phone_level(left, right) == _phone_level_by_sets(left, right)


@settings(max_examples=300, deadline=None)
@given(_EMAILS, _EMAILS)
def test_email_level_is_the_set_definition(a: list[str], b: list[str]) -> None:
    left, right = _side(emails=tuple(a)), _side(emails=tuple(b))
    assert email_level(left, right) == _email_level_by_sets(left, right)


def _context() -> CustomerContext:
    return CustomerContext.from_settings(Settings(database_url="sqlite+aiosqlite://", kafka_enabled=False))


def test_blocking_keys_from_the_importers_cache_are_the_keys_computed_afresh() -> None:
    # The importer keeps each blocking value's key between rows: profiles that share values (a
    # surname, a postcode, a street) get from it the keys they would get computed one by one.
    context, known = _context(), {}
    rng = random.Random(3)
    for _ in range(300):
        side = side_of(
            rng.choice(["Anna", "Luc", "Zoé", ""]),
            rng.choice(["Moreau", "Petit", "Lefèvre"]),
            {
                "birthday": rng.choice(["1970-01-02", "1970-02-01", None]),
                "emails": [{"address": f"{rng.randrange(50)}@example.org"}],
                "addresses": [
                    {"line1": f"{rng.randrange(5)} Rue Nationale", "postcode": "75013", "city": "Paris"}
                ],
            },
        )
        assert blocking_keys_of_side(context, side, known) == blocking_keys_of_side(context, side)
    assert 0 < len(known) < 300 * 8
