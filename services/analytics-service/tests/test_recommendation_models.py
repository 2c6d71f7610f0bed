"""Item-to-item co-occurrence, bought-together lists and personal recommendations on small baskets."""

from datetime import UTC, datetime, timedelta

from analytics_service.recommendations.cooccurrence import (
    Interaction,
    bought_together,
    item_neighbours,
    popular_items,
    recommend_for_customer,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)

BASKETS = {
    "c1": ["tent", "pegs", "lamp"],
    "c2": ["tent", "pegs"],
    "c3": ["tent", "pegs", "stove"],
    "c4": ["stove", "gas"],
    "c5": ["stove", "gas", "lamp"],
    "c6": ["lamp"],
}


def test_neighbours_rank_the_pair_bought_together_most_first_and_count_customers() -> None:
    neighbours = item_neighbours(BASKETS)
    first = neighbours["tent"][0]
    assert first.sku == "pegs"
    assert first.customers == 3


def test_pairs_below_min_customers_are_dropped() -> None:
    neighbours = item_neighbours(BASKETS, min_customers=2)
    assert "lamp" not in {n.sku for n in neighbours["tent"]}
    assert "stove" not in {n.sku for n in neighbours.get("tent", [])}


def test_heavy_buyer_weighs_less_than_ordinary_customers() -> None:
    baskets = {f"w{i}": ["a", "b"] for i in range(3)} | {
        "wholesaler": ["a", "c", *[f"x{i}" for i in range(200)]]
    }
    baskets |= {"u1": ["a", "c"], "u2": ["a", "b"]}
    neighbours = item_neighbours(baskets, min_customers=1)
    assert neighbours["a"][0].sku == "b"


def test_bought_together_excludes_unavailable_and_says_why() -> None:
    neighbours = item_neighbours(BASKETS)
    result = bought_together(neighbours, "stove", exclude={"gas"})
    assert "gas" not in [r.sku for r in result]
    full = bought_together(neighbours, "stove")
    assert full[0].sku == "gas"
    assert full[0].reason == "bought with stove by 2 customers"


def test_bought_together_of_unknown_sku_is_empty() -> None:
    assert bought_together(item_neighbours(BASKETS), "nothing") == []


def test_personal_recommendations_skip_what_was_bought_and_explain() -> None:
    neighbours = item_neighbours(BASKETS)
    history = [Interaction("tent", "purchase", NOW - timedelta(days=3))]
    result = recommend_for_customer(neighbours, history, now=NOW)
    assert result[0].sku == "pegs"
    assert result[0].reason == "you bought tent; bought with it by 3 customers"
    assert all(r.sku != "tent" for r in result)


def test_views_count_less_than_purchases_and_are_named_as_views() -> None:
    neighbours = item_neighbours(BASKETS)
    history = [Interaction("gas", "view", NOW)]
    result = recommend_for_customer(neighbours, history, now=NOW)
    assert result[0].sku == "stove"
    assert result[0].reason.startswith("you viewed gas")


def test_recent_purchases_outweigh_old_ones() -> None:
    neighbours = item_neighbours(BASKETS)
    history = [
        Interaction("tent", "purchase", NOW - timedelta(days=700)),
        Interaction("gas", "purchase", NOW - timedelta(days=1)),
    ]
    assert recommend_for_customer(neighbours, history, now=NOW)[0].sku == "stove"


def test_cold_customer_gets_popular_items_minus_exclusions() -> None:
    popular = popular_items(BASKETS)
    assert popular[:2] == [("lamp", 3), ("pegs", 3)]
    result = recommend_for_customer({}, [], now=NOW, popular=popular, exclude={"tent"}, limit=3)
    assert [r.sku for r in result] == [sku for sku, _ in popular if sku != "tent"][:3]
    assert result[0].reason.startswith("popular: bought by")


def test_excluded_skus_never_recommended() -> None:
    neighbours = item_neighbours(BASKETS)
    history = [Interaction("tent", "purchase", NOW)]
    result = recommend_for_customer(
        neighbours, history, now=NOW, exclude={"pegs"}, popular=popular_items(BASKETS)
    )
    assert "pegs" not in [r.sku for r in result]
