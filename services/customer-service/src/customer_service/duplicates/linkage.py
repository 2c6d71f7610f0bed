"""Fellegi-Sunter record linkage: m/u probabilities per comparison level, estimated by EM from the
shop's own profiles (unsupervised), term-frequency adjustment, and a match probability per pair.

- u (how often two different people agree at a level) is counted on random pairs of profiles;
- m (how often two records of one person agree at a level) and the share of matches among compared
  pairs are estimated by expectation-maximisation over the pairs that blocking compares, u held fixed;
- a pair's weight is the sum over its fields of log2(m/u) at its level (a missing field adds 0); an
  exact agreement on a first name, surname or postcode is adjusted by how common that value is;
- two guards keep precision where the independence assumption fails: different first names (in both
  orders) are a household, not one person, and names alone are never enough.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from customer_service.duplicates.matching import (
    FIELDS,
    LEVELS,
    NAME_FIELDS,
    NULL,
    TF_FIELDS,
    Comparison,
    Side,
    birthday_level,
    blocking_values,
    compare,
    email_level,
    external_level,
    locality_level,
    names,
    phone_level,
    tf_values,
)

# Different first names with everything else shared is a household, not one person; with the same
# birth date too it may be twins, or one person whose given name was entered differently: listed for
# review, never merged automatically (below any sensible auto-merge threshold).
HOUSEHOLD_CAP = 0.5
SAME_BIRTH_DATE_CAP = 0.99
# Names alone (or with one other field) are not evidence enough to call two profiles one person.
MIN_FIELDS = 3
THIN_EVIDENCE_CAP = 0.6
# Bounds of the term-frequency adjustment, in bits (a rare value is evidence, not proof).
TF_MIN_BITS, TF_MAX_BITS = -4.0, 3.0
# Values seen at least this often get their own frequency; rarer ones share the floor.
TF_MIN_COUNT = 2
TF_MAX_VALUES = 5_000

# Starting point (and the model used before any training): m and u per level, lowest level first.
DEFAULT_M: dict[str, list[float]] = {
    "first_name": [0.03, 0.05, 0.12, 0.80],
    "last_name": [0.03, 0.05, 0.12, 0.80],
    "birthday": [0.03, 0.07, 0.05, 0.85],
    "locality": [0.10, 0.05, 0.10, 0.75],
    "street": [0.15, 0.10, 0.15, 0.60],
    "email": [0.15, 0.10, 0.75],
    "phone": [0.15, 0.10, 0.75],
    "external_id": [0.02, 0.98],
}
DEFAULT_U: dict[str, list[float]] = {
    "first_name": [0.93, 0.05, 0.005, 0.015],
    "last_name": [0.95, 0.04, 0.003, 0.007],
    "birthday": [0.995, 0.0045, 0.0001, 0.0004],
    "locality": [0.90, 0.08, 0.015, 0.005],
    "street": [0.99, 0.009, 0.0008, 0.0002],
    "email": [0.999, 0.00099, 0.00001],
    "phone": [0.999, 0.00099, 0.00001],
    "external_id": [0.9999, 0.0001],
}
# Chance that two profiles taken at random are one person (a base of some 10,000 profiles with a few
# duplicates each); training replaces it with the base's own.
DEFAULT_PRIOR = 1e-4


@functools.lru_cache(maxsize=16_384)
def term_key(value: str) -> str:
    """Frequencies are stored under a short hash of the value, not the value (cached: scoring looks
    up the same names and postcodes over and over)."""
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


@dataclass
class Model:
    """A fitted (or the default) linkage model; `to_json`/`from_json` store it in the database."""

    prior: float = DEFAULT_PRIOR
    m: dict[str, list[float]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_M.items()})
    u: dict[str, list[float]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_U.items()})
    tf: dict[str, dict[str, float]] = field(default_factory=dict)
    tf_floor: dict[str, float] = field(default_factory=dict)
    trained_at: datetime | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._weights = {
            f: [math.log2(m / u) for m, u in zip(self.m[f], self.u[f], strict=True)] for f in FIELDS
        }
        self._prior_bits = math.log2(self.prior / (1 - self.prior))
        # Per field, in FIELDS order: its weights by level, and its term frequencies when it has them.
        self._table = [
            (name, self._weights[name], self.tf.get(name) if name in TF_FIELDS else None) for name in FIELDS
        ]
        # The most a street comparison can add (0: not compared); the street has no term frequencies.
        self._street_max_bits = max(0.0, *self._weights["street"])

    def to_json(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "m": self.m,
            "u": self.u,
            "tf": self.tf,
            "tf_floor": self.tf_floor,
            "trained_at": self.trained_at.isoformat() if self.trained_at else None,
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model:
        trained = data.get("trained_at")
        return cls(
            prior=float(data["prior"]),
            m={f: [float(x) for x in data["m"][f]] for f in FIELDS},
            u={f: [float(x) for x in data["u"][f]] for f in FIELDS},
            tf={f: {str(k): float(v) for k, v in data.get("tf", {}).get(f, {}).items()} for f in TF_FIELDS},
            tf_floor={f: float(v) for f, v in data.get("tf_floor", {}).items()},
            trained_at=datetime.fromisoformat(trained) if trained else None,
            stats=dict(data.get("stats", {})),
        )

    def weights(self, comparison: Comparison) -> dict[str, float]:
        """Evidence per compared field in bits: log2(m/u) at its level, term-frequency adjusted."""
        result: dict[str, float] = {}
        agreed = comparison.agreed
        for (name, by_level, tf), level in zip(self._table, comparison.levels, strict=True):
            if level == NULL:
                continue
            weight = by_level[level]
            if tf is not None and name in agreed:
                weight += self._tf_bits(name, tf, agreed[name])
            result[name] = weight
        return result

    def _tf_bits(self, name: str, tf: dict[str, float], value: str) -> float:
        """The term-frequency adjustment of an exact agreement on `value` (0 when it has none)."""
        frequency = tf.get(term_key(value), self.tf_floor.get(name))
        if not frequency:
            return 0.0
        return min(max(math.log2(self.u[name][-1] / frequency), TF_MIN_BITS), TF_MAX_BITS)

    def cannot_reach(self, a: Side, b: Side, named: tuple[int, int, bool], threshold: float) -> bool:
        """Whether the pair (`named`: its `names(a, b)`) scores below `threshold` whatever its street
        level: every other field's weight as `weights` gives it, plus the street's largest, bound its
        bits (the caps only lower a probability; the margin covers the order in which the full sum
        adds the same weights). The levels are `compare`'s, without building the comparison."""
        first, last, swapped = named
        locality, postcode = locality_level(a, b)
        agreed = (
            (b.last_name if swapped else b.first_name) if first == 3 else None,
            (b.first_name if swapped else b.last_name) if last == 3 else None,
            None,
            postcode,
        )
        levels = (first, last, birthday_level(a.birthday, b.birthday), locality)
        bits = self._prior_bits + self._street_max_bits + 1e-9
        for (name, by_level, tf), level, value in zip(self._table, levels, agreed, strict=False):
            if level != NULL:
                bits += by_level[level]
                if tf is not None and value is not None:
                    bits += self._tf_bits(name, tf, value)
        for (_, by_level, _), level in zip(
            self._table[EMAIL:], (email_level(a, b), phone_level(a, b), external_level(a, b)), strict=True
        ):
            if level != NULL:
                bits += by_level[level]
        return round(_probability_of_bits(bits), 4) < threshold

    def probability(self, comparison: Comparison) -> tuple[float, dict[str, float]]:
        """Match probability of a pair and the weight of each field compared."""
        weights = self.weights(comparison)
        bits = self._prior_bits + sum(weights.values())
        probability = _probability_of_bits(bits)
        levels = comparison.levels
        if levels[EXTERNAL_ID] != 1:
            if _household(levels, comparison.names_swapped):
                same_birth_date = levels[BIRTHDAY] >= 2
                probability = min(probability, SAME_BIRTH_DATE_CAP if same_birth_date else HOUSEHOLD_CAP)
            if len(weights) < MIN_FIELDS or not weights.keys() - NAME_FIELDS:
                probability = min(probability, THIN_EVIDENCE_CAP)
        return probability, weights


def _probability_of_bits(bits: float) -> float:
    return 1.0 / (1.0 + 2.0 ** max(-bits, -60.0)) if bits > -60 else 0.0


DEFAULT_MODEL = Model()


FIRST_NAME, LAST_NAME, BIRTHDAY, EXTERNAL_ID = (
    FIELDS.index(f) for f in ("first_name", "last_name", "birthday", "external_id")
)
# `Model.cannot_reach` reads the fields in this order: names, birthday, locality, (street), then
# email, phone and external id.
EMAIL = FIELDS.index("email")
assert FIELDS[:4] == ("first_name", "last_name", "birthday", "locality")
assert FIELDS[4:] == ("street", "email", "phone", "external_id")


def _household(levels: tuple[int, ...], swapped: bool) -> bool:
    """Two people of one household (or twins): their given names differ (with swapped fields either
    name may be the given name), or there is no given name to compare and their birthdays differ."""
    given = (levels[FIRST_NAME], levels[LAST_NAME]) if swapped else (levels[FIRST_NAME],)
    if 0 in given:
        return True
    return max(given) == NULL and levels[BIRTHDAY] == 0


def score(a: Side, b: Side, model: Model = DEFAULT_MODEL) -> tuple[float, dict[str, float]]:
    """Match probability of two profiles (rounded) and each field's weight in bits (see `evidence`)."""
    probability, weights = model.probability(compare(a, b))
    return round(probability, 4), weights


def score_at_least(
    a: Side, b: Side, threshold: float, model: Model = DEFAULT_MODEL
) -> tuple[float, dict[str, float]] | None:
    """`score(a, b, model)` when it can reach `threshold`; None when it cannot: because the household
    guard caps the pair below it (the guard reads only names, birth dates and external ids, so most
    pairs a broad blocking key brings, other people of one street or one surname in one town, are
    settled without comparing the other fields), or because its other fields' weights with the
    street's largest stay below it. Same result as `score` for every pair it scores."""
    named = names(a, b)
    if _household_capped(a, b, named, threshold):
        return None
    # Then the pairs that stay below the threshold whatever their street (most of the rest: one
    # name shared, the other fields disagreeing) are settled without comparing the streets.
    if model.cannot_reach(a, b, named, threshold):
        return None
    probability, weights = model.probability(compare(a, b, named))
    return round(probability, 4), weights


def household_capped(a: Side, b: Side, threshold: float) -> bool:
    """Whether the household guard alone keeps the pair below `threshold` (see `score_at_least`)."""
    return _household_capped(a, b, names(a, b), threshold)


def _household_capped(a: Side, b: Side, named: tuple[int, int, bool], threshold: float) -> bool:
    if a.external_ids and b.external_ids and external_level(a, b) == 1:
        return False
    first, last, swapped = named
    birthday = birthday_level(a.birthday, b.birthday) if a.birthday and b.birthday else NULL
    # `_household` on these three levels (the only ones it reads besides the external id's).
    given = (first, last) if swapped else (first,)
    if 0 in given or (max(given) == NULL and birthday == 0):
        cap = SAME_BIRTH_DATE_CAP if birthday >= 2 else HOUSEHOLD_CAP
        return cap < threshold
    return False


def evidence(weights: dict[str, float]) -> dict[str, float]:
    """The weights as stored and shown to data stewards (bits, two decimals)."""
    return {k: round(v, 2) for k, v in weights.items()}


# --- training ------------------------------------------------------------------------------------


def estimate_u(sides: Sequence[Side], *, pairs: int, rng: random.Random) -> dict[str, list[float]]:
    """Level frequencies among random pairs (almost all of them two different people)."""
    counts = {f: np.ones(len(LEVELS[f])) for f in FIELDS}  # add-one smoothing
    n = len(sides)
    for _ in range(pairs):
        i, j = rng.randrange(n), rng.randrange(n)
        if i == j:
            continue
        for name, level in zip(FIELDS, compare(sides[i], sides[j]).levels, strict=True):
            if level != NULL:
                counts[name][level] += 1
    return {f: [float(x) for x in counts[f] / counts[f].sum()] for f in FIELDS}


# The fields a blocking rule makes agree: EM over that rule's pairs does not estimate their m (the
# pairs were chosen for agreeing on them), only the m of the other fields.
RULE_FIELDS: dict[str, frozenset[str]] = {
    "e": frozenset({"email"}),
    "p": frozenset({"phone"}),
    "x": frozenset({"external_id"}),
    "ph": frozenset({"first_name", "last_name"}),
    "np": frozenset({"first_name", "last_name", "locality"}),
    "nd": frozenset({"first_name", "last_name", "birthday"}),
    "pd": frozenset({"locality", "birthday"}),
    "nc": frozenset({"first_name", "last_name", "locality"}),
    "bc": frozenset({"locality", "birthday"}),
    "bi": frozenset({"birthday"}),
    "ac": frozenset({"street", "locality"}),
}
# The rules EM learns from. Rules on one name plus a place ("np", "nc") or on an address ("ac") are
# left out: their pairs are mostly households (same surname, same address), which agree on every
# field they leave to estimate except the birth date, and would teach EM that a different birth date
# is normal.
TRAINING_RULES = ("e", "p", "x", "ph", "nd", "pd")


def blocked_pairs(sides: Sequence[Side], *, max_block: int) -> dict[tuple[int, int], set[str]]:
    """Pairs of `sides` sharing a blocking value, each with the rules it came from (a block larger than
    `max_block` contributes its last members only: in the service such a block is read only through
    its most recent members)."""
    blocks: dict[str, list[int]] = {}
    for index, side in enumerate(sides):
        for value in blocking_values(side):
            blocks.setdefault(value, []).append(index)
    pairs: dict[tuple[int, int], set[str]] = {}
    for value, members in blocks.items():
        rule = value.partition(":")[0]
        if len(members) > max_block:
            members = members[-max_block:]
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                pairs.setdefault((a, b), set()).add(rule)
    return pairs


def fit_em(
    vectors: np.ndarray,
    u: dict[str, list[float]],
    *,
    m: dict[str, list[float]] | None = None,
    prior: float = DEFAULT_PRIOR,
    fixed: frozenset[str] = frozenset(),
    ignored: frozenset[str] = frozenset(),
    iterations: int = 60,
    tolerance: float = 1e-6,
) -> tuple[dict[str, list[float]], float, int, set[str]]:
    """m per level and the share of matches among `vectors` (rows of levels, NULL = not compared), by
    EM with u fixed (and m of the `fixed` fields; the `ignored` fields are left out of the likelihood:
    a blocking rule's own fields agree on all its pairs and say nothing there). Rows are grouped into
    distinct patterns first, so the cost does not grow with the number of pairs. Also returns the
    fields it could estimate."""
    patterns, counts = np.unique(vectors, axis=0, return_counts=True)
    counts = counts.astype(float)
    m_now = {f: np.array((m or DEFAULT_M)[f], dtype=float) for f in FIELDS}
    u_arr = {f: np.array(u[f], dtype=float) for f in FIELDS}
    estimated: set[str] = set()
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007
        log_ratio = np.full(len(patterns), math.log(prior / (1 - prior)))
        for k, name in enumerate(FIELDS):
            if name in ignored:
                continue
            column = patterns[:, k]
            present = column != NULL
            log_ratio[present] += np.log(m_now[name][column[present]]) - np.log(u_arr[name][column[present]])
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -60, 60)))
        weight = posterior * counts
        new_prior = float(np.clip(weight.sum() / counts.sum(), 1e-6, 0.95))
        change = abs(new_prior - prior)
        for k, name in enumerate(FIELDS):
            if name in fixed or name in ignored:
                continue
            column = patterns[:, k]
            sums = np.array([weight[column == level].sum() for level in range(len(LEVELS[name]))])
            if sums.sum() < 5:
                continue  # (almost) never compared among these pairs: nothing to learn, keep the start
            estimated.add(name)
            new_m = (sums + 0.5) / (sums + 0.5).sum()
            change = max(change, float(np.abs(new_m - m_now[name]).max()))
            m_now[name] = new_m
        prior = new_prior
        if change < tolerance:
            break
    return {f: [float(x) for x in m_now[f]] for f in FIELDS}, prior, done, estimated


def term_frequencies(sides: Iterable[Side]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Share of profiles holding each value (the common ones), and the share assumed for the rest."""
    counters = {f: Counter[str]() for f in TF_FIELDS}
    for side in sides:
        for name, values in tf_values(side).items():
            counters[name].update(values)
    tf: dict[str, dict[str, float]] = {}
    floor: dict[str, float] = {}
    for name, counter in counters.items():
        held = sum(counter.values()) or 1
        common = [(v, c) for v, c in counter.most_common(TF_MAX_VALUES) if c >= TF_MIN_COUNT]
        tf[name] = {term_key(v): c / held for v, c in common}
        floor[name] = (min((c for _, c in common), default=TF_MIN_COUNT) if common else TF_MIN_COUNT) / held
    return tf, floor


def _fit_per_rule(
    vectors: np.ndarray, rules: list[set[str]], u: dict[str, list[float]]
) -> tuple[dict[str, list[float]], int]:
    """m of each field as the mean of its EM estimates over the rules that do not block on it."""
    start = {k: list(v) for k, v in DEFAULT_M.items()}
    if not len(vectors):
        return start, 0
    estimates: dict[str, list[list[float]]] = {f: [] for f in FIELDS}
    iterations = 0
    for rule in TRAINING_RULES:
        fixed = RULE_FIELDS[rule]
        mask = np.array([rule in r for r in rules], dtype=bool)
        if mask.sum() < 50:
            continue
        m, _, done, estimated = fit_em(vectors[mask], u, m=start, ignored=fixed)
        iterations += done
        for name in estimated:
            estimates[name].append(m[name])
    m = {f: [float(x) for x in np.mean(estimates[f], axis=0)] if estimates[f] else start[f] for f in FIELDS}
    return m, iterations


def _match_share(
    comparisons: Sequence[Comparison],
    m: dict[str, list[float]],
    u: dict[str, list[float]],
    tf: dict[str, dict[str, float]],
    floor: dict[str, float],
    iterations: int = 30,
) -> float:
    """The share of matches among the blocked pairs: the mean match probability of the pairs under
    the fitted m and u, iterated to a fixed point (the last step of EM, with the guards applied)."""
    if not comparisons:
        return 0.1
    share = 0.1
    for _ in range(iterations):
        model = Model(prior=share, m=m, u=u, tf=tf, tf_floor=floor)
        new = float(np.mean([model.probability(c)[0] for c in comparisons]))
        new = min(max(new, 1e-6), 0.99)
        if abs(new - share) < 1e-5:
            return new
        share = new
    return share


def train(
    sides: Sequence[Side],
    *,
    seed: int = 0,
    random_pairs: int = 50_000,
    max_block: int = 50,
    max_pairs: int = 200_000,
    progress: Callable[[str], None] | None = None,
) -> Model:
    """A model fitted to `sides` (the shop's profiles): u from random pairs, m and the match share by
    EM over the blocked pairs, term frequencies of names and postcodes."""
    rng = random.Random(seed)
    if len(sides) < 2:
        return Model(trained_at=datetime.now(UTC), stats={"profiles": len(sides)})
    if progress:
        progress("estimating u on random pairs")
    u = estimate_u(sides, pairs=random_pairs, rng=rng)
    if progress:
        progress("comparing blocked pairs")
    by_pair = blocked_pairs(sides, max_block=max_block)
    pairs = sorted(by_pair)
    if len(pairs) > max_pairs:
        pairs = sorted(rng.sample(pairs, max_pairs))
    comparisons = [compare(sides[a], sides[b]) for a, b in pairs]
    vectors = np.array([c.levels for c in comparisons], dtype=np.int8).reshape(-1, len(FIELDS))
    if progress:
        progress("estimating m by EM, one blocking rule at a time")
    m, iterations = _fit_per_rule(vectors, [by_pair[p] for p in pairs], u)
    tf, floor = term_frequencies(sides)
    blocked_prior = _match_share(comparisons, m, u, tf, floor)
    # The prior is the chance that two profiles taken at random are one person (as in splink): the
    # matches EM found among the blocked pairs, spread over every pair of the base.
    possible = len(sides) * (len(sides) - 1) / 2
    prior = float(min(max(blocked_prior * len(by_pair) / possible, 1e-9), 0.5))
    return Model(
        prior=prior,
        m=m,
        u=u,
        tf=tf,
        tf_floor=floor,
        trained_at=datetime.now(UTC),
        stats={
            "profiles": len(sides),
            "random_pairs": random_pairs,
            "blocked_pairs": len(by_pair),
            "compared_pairs": len(pairs),
            "match_share_blocked": blocked_prior,
            "em_iterations": iterations,
            "rules": sorted(RULE_FIELDS),
        },
    )
