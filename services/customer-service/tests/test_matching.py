"""The cheap pre-check of bulk duplicate scoring never drops a pair that scoring would keep."""

import itertools
import random
from typing import Any

from customer_service.duplicates.matching import could_reach, score, side_of


def _documents() -> list[tuple[str, str, dict[str, Any]]]:
    rng = random.Random(4)
    firsts = ["Jean", "Jeanne", "Jon", "Jonathan", "Jonathon", "Marie", "Maria", ""]
    lasts = ["Martin", "Martins", "Dupont", "Dupond", ""]
    out = []
    for _ in range(120):
        document = {
            "emails": [{"address": rng.choice(["a@x.com", "a.b@x.com", "ab@x.com", "c@y.org"])}]
            if rng.random() < 0.7
            else [],
            "phones": [{"number": rng.choice(["+33612345678", "+33612345679"])}]
            if rng.random() < 0.6
            else [],
            "addresses": [{"line1": rng.choice(["1 rue A", "2 av B"]), "city": "Lyon", "postcode": "69001"}]
            if rng.random() < 0.6
            else [],
            "birthday": rng.choice([None, "1980-01-02", "1980-02-01"]),
        }
        out.append((rng.choice(firsts), rng.choice(lasts), document))
    return out


def test_could_reach_keeps_every_pair_scoring_at_or_above_the_threshold() -> None:
    sides = [side_of(first, last, document) for first, last, document in _documents()]
    kept_by_score = skipped = 0
    for a, b in itertools.combinations(sides, 2):
        for threshold in (0.5, 0.65, 0.8, 0.97):
            total, _ = score(a, b)
            if not could_reach(a, b, threshold):
                skipped += 1
                assert total < threshold
            elif total >= threshold:
                kept_by_score += 1

    assert skipped > 0
    assert kept_by_score > 0
