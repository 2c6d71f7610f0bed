"""The registry: building events from registered payload models, and the catalog's own rules."""

import re

import pytest

from contracts import EventData, UnknownEventType, all_specs, build_event, parse_data, spec_for, topics
from contracts.catalog.customers import CustomerCreated
from contracts.catalog.products import ProductCreated

# Field names that would put clear-text PII into an event. Ids and business facts only.
PII_FIELD_WORDS = (
    "email",
    "phone",
    "address",
    "birthday",
    "birthdate",
    "first_name",
    "last_name",
    "full_name",
)
PII_FIELD_NAMES = {"name", "dob", "date_of_birth", "given_name", "family_name", "surname", "mobile"}


def _looks_like_pii(field: str) -> bool:
    name = field.lower()
    if name in PII_FIELD_NAMES:
        return True
    if name.endswith(("_id", "_ids")):
        return False  # a reference to an entity (e.g. address_id) is not the PII itself
    return any(word in name for word in PII_FIELD_WORDS)


def _field_names(model: type[EventData]) -> list[str]:
    """Every property of the payload, including those of nested models."""
    schema = model.model_json_schema()
    names = list(schema.get("properties", {}))
    for nested_name, nested in schema.get("$defs", {}).items():
        names += [f"{nested_name}.{field}" for field in nested.get("properties", {})]
    return names


def test_build_event_wraps_the_registered_payload() -> None:
    event = build_event(
        "ecom.customer.created.v1",
        CustomerCreated(customer_id="c-1", country="DE"),
        subject="c-1",
        sequence=1,
        correlation_id="corr-1",
    )

    assert event.source == "/customer-service"
    assert event.type == "ecom.customer.created.v1"
    assert event.subject == "c-1"
    assert event.data == {"customer_id": "c-1", "country": "DE"}
    assert event.sequence == 1
    assert event.correlationid == "corr-1"


def test_build_event_rejects_the_wrong_payload_model() -> None:
    with pytest.raises(TypeError, match="CustomerCreated"):
        build_event(
            "ecom.customer.created.v1", ProductCreated(product_id="p-1", status="draft"), subject="p-1"
        )


def test_build_event_rejects_an_unknown_type() -> None:
    with pytest.raises(UnknownEventType):
        build_event("ecom.customer.vanished.v1", CustomerCreated(customer_id="c-1"), subject="c-1")


def test_parse_data_returns_the_payload_model() -> None:
    event = build_event(
        "ecom.product.created.v1", ProductCreated(product_id="p-1", status="draft"), subject="p-1"
    )

    assert parse_data(event) == ProductCreated(product_id="p-1", status="draft")


def test_spec_for_unknown_type_raises() -> None:
    with pytest.raises(UnknownEventType):
        spec_for("ecom.nothing.happened.v1")


def test_event_types_are_named_ecom_aggregate_past_tense_version() -> None:
    pattern = re.compile(r"^ecom\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[1-9][0-9]*$")

    bad = [spec.type for spec in all_specs() if not pattern.match(spec.type)]

    assert not bad, f"event types not named ecom.<aggregate>.<past_tense>.v<N>: {bad}"


def test_every_event_travels_on_a_declared_topic() -> None:
    bad = [f"{spec.type} -> {spec.topic}" for spec in all_specs() if spec.topic not in topics.ALL_TOPICS]

    assert not bad, f"topics missing from contracts.topics.ALL_TOPICS: {bad}"


def test_every_declared_topic_has_a_description_with_its_key() -> None:
    missing = [t for t in topics.ALL_TOPICS if "Key:" not in topics.TOPIC_DESCRIPTIONS.get(t, "")]

    assert not missing


def test_every_event_has_a_producer_and_a_description() -> None:
    bad = [spec.type for spec in all_specs() if not spec.producer or not spec.description.strip()]

    assert not bad


def test_no_payload_carries_a_pii_field() -> None:
    offenders = [
        f"{spec.type}: {field}"
        for spec in all_specs()
        for field in _field_names(spec.data_model)
        if _looks_like_pii(field.rsplit(".", 1)[-1])
    ]

    assert not offenders, (
        f"events carry ids, never clear-text PII; consumers ask customer-service for it: {offenders}"
    )


@pytest.mark.parametrize(
    ("field", "is_pii"),
    [
        ("email", True),
        ("email_hash", True),
        ("phone_number", True),
        ("shipping_address", True),
        ("birthday", True),
        ("first_name", True),
        ("last_name", True),
        ("name", True),
        ("customer_id", False),
        ("address_id", False),
        ("product_name", False),
        ("country", False),
    ],
)
def test_pii_field_detection(field: str, is_pii: bool) -> None:
    assert _looks_like_pii(field) is is_pii


def test_payload_models_forbid_unknown_fields() -> None:
    loose = [spec.type for spec in all_specs() if spec.data_model.model_config.get("extra") != "forbid"]

    assert not loose
