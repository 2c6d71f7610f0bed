"""JSON Schema export and validation of emitted events against the registry."""

import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from contracts import CloudEvent, EventData, EventSpec, all_specs, build_event, topics
from contracts.catalog.customers import CustomerCreated
from contracts.schemas import (
    EventContractError,
    all_schemas,
    envelope_schema,
    event_schema,
    validate_event,
    validate_event_json,
)


class _Line(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class _OrderPlaced(EventData):
    order_id: str
    lines: list[_Line]


# Not registered: a payload with a nested model, to check `$defs` end up where `$ref`s point.
NESTED_SPEC = EventSpec(
    type="ecom.order.placed.v1",
    topic=topics.ORDERS,
    data_model=_OrderPlaced,
    producer="test-service",
    description="A test order with lines.",
)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _customer_created(**data: Any) -> CloudEvent:
    return CloudEvent(source="/customer-service", type="ecom.customer.created.v1", subject="c-1", data=data)


def test_envelope_schema_requires_every_attribute_an_event_carries() -> None:
    schema = envelope_schema()

    assert schema["type"] == "object"
    assert set(schema["required"]) == {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    }


def test_every_registered_event_has_an_object_schema() -> None:
    schemas = all_schemas()

    assert set(schemas) == {spec.type for spec in all_specs()}
    for event_type, schema in schemas.items():
        assert schema["type"] == "object", event_type
        assert schema["properties"]["type"]["const"] == event_type
        data = schema["properties"]["data"]
        assert data["type"] == "object", event_type
        assert data["properties"], event_type
        assert "data" in schema["required"], event_type
        assert not [ref for ref in _refs(schema) if not ref.startswith("#/")]
        for ref in _refs(schema):
            _resolve(schema, ref)


def test_event_schema_is_valid_json() -> None:
    for schema in all_schemas().values():
        assert json.loads(json.dumps(schema)) == schema


def test_nested_models_are_hoisted_to_the_event_schema_defs() -> None:
    schema = event_schema(NESTED_SPEC)

    assert "$defs" not in schema["properties"]["data"]
    assert set(schema["$defs"]) == {"_Line"}
    line = _resolve(schema, schema["properties"]["data"]["properties"]["lines"]["items"]["$ref"])
    assert line["properties"]["quantity"]["minimum"] == 1


def test_valid_event_passes() -> None:
    event = build_event("ecom.customer.created.v1", CustomerCreated(customer_id="c-1"), subject="c-1")

    validate_event(event)
    validate_event(event, topic=topics.CUSTOMERS)


def test_event_with_a_missing_field_is_rejected() -> None:
    with pytest.raises(EventContractError, match=r"data\.customer_id: Field required"):
        validate_event(_customer_created(country="DE"))


def test_event_with_a_field_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(EventContractError, match=r"data\.customer_id"):
        validate_event(_customer_created(customer_id=42))


def test_event_with_an_undeclared_field_is_rejected() -> None:
    with pytest.raises(EventContractError, match=r"data\.loyalty_tier: Extra inputs are not permitted"):
        validate_event(_customer_created(customer_id="c-1", loyalty_tier="gold"))


def test_rejection_message_does_not_echo_the_payload() -> None:
    with pytest.raises(EventContractError) as caught:
        validate_event(_customer_created(customer_id="c-1", email="alice@example.com"))

    assert "alice@example.com" not in str(caught.value)


def test_event_of_an_unknown_type_is_rejected() -> None:
    event = CloudEvent(source="/customer-service", type="ecom.customer.teleported.v1", subject="c-1")

    with pytest.raises(EventContractError, match=r"unknown event type 'ecom\.customer\.teleported\.v1'"):
        validate_event(event)


def test_event_on_the_wrong_topic_is_rejected() -> None:
    event = build_event("ecom.customer.created.v1", CustomerCreated(customer_id="c-1"), subject="c-1")

    with pytest.raises(EventContractError, match=r"its topic is 'ecom\.customers\.v1'"):
        validate_event(event, topic=topics.PRODUCTS)


def test_event_with_an_invalid_extension_name_is_rejected() -> None:
    event = CloudEvent.model_validate(
        {
            "source": "/customer-service",
            "type": "ecom.customer.created.v1",
            "subject": "c-1",
            "data": {"customer_id": "c-1"},
            "Tenant_ID": "acme",
        }
    )

    with pytest.raises(EventContractError, match="Tenant_ID"):
        validate_event(event)


def test_event_built_without_validation_is_checked_as_it_travels() -> None:
    event = CloudEvent.model_construct(
        source="/customer-service", type="ecom.customer.created.v1", subject=""
    )

    with pytest.raises(EventContractError, match="invalid envelope"):
        validate_event(event)


def test_raw_event_from_kafka_is_parsed_and_validated() -> None:
    raw = build_event(
        "ecom.customer.created.v1", CustomerCreated(customer_id="c-1"), subject="c-1"
    ).to_json_bytes()

    event = validate_event_json(raw, topic=topics.CUSTOMERS)

    assert event.data == {"customer_id": "c-1", "country": None}


def test_raw_bytes_that_are_not_an_event_are_rejected() -> None:
    with pytest.raises(EventContractError, match="not a CloudEvent"):
        validate_event_json(b'{"hello": "world"}')
