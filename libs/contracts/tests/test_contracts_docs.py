"""The generated docs: docs/events.md and docs/asyncapi.yaml."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import all_specs, topics
from contracts.docs import (
    ASYNCAPI_YAML,
    DLQ_HEADERS,
    EVENTS_MD,
    EXAMPLE_EVENT,
    GENERATE_COMMAND,
    asyncapi_document,
    find_repo_root,
    generated_files,
    main,
    render_asyncapi_yaml,
    render_events_md,
)
from contracts.schemas import validate_event_json

REPO_ROOT = find_repo_root(Path(__file__).parent)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("name", [EVENTS_MD, ASYNCAPI_YAML])
def test_committed_docs_are_up_to_date(name: str) -> None:
    path = REPO_ROOT / "docs" / name
    expected = generated_files()[name]

    committed = path.read_text(encoding="utf-8") if path.is_file() else ""

    assert committed == expected, f"docs/{name} is stale: run `{GENERATE_COMMAND}` and commit the result"


def test_generation_is_deterministic() -> None:
    assert generated_files() == generated_files()


def test_asyncapi_document_is_version_3() -> None:
    document = yaml.safe_load(render_asyncapi_yaml())

    assert document["asyncapi"] == "3.0.0"
    assert document["defaultContentType"] == "application/json"
    assert document["info"]["title"]
    assert document["info"]["version"]


def test_asyncapi_yaml_is_the_document() -> None:
    assert yaml.safe_load(render_asyncapi_yaml()) == json.loads(json.dumps(asyncapi_document()))


def test_asyncapi_has_production_and_embedded_kafka_servers() -> None:
    servers = asyncapi_document()["servers"]

    assert servers["production"] == {**servers["production"], "host": "kafka:9092", "protocol": "kafka"}
    assert servers["embedded"] == {**servers["embedded"], "host": "127.0.0.1:9092", "protocol": "kafka"}


def test_asyncapi_has_a_channel_per_topic_with_its_messages() -> None:
    document = asyncapi_document()
    by_address = {channel["address"]: channel for channel in document["channels"].values()}

    for spec in all_specs():
        channel = by_address[spec.topic]
        assert spec.type in channel["messages"], spec.type
        message = _resolve(document, channel["messages"][spec.type]["$ref"])
        payload = _resolve(document, message["payload"]["$ref"])
        assert payload["properties"]["type"]["const"] == spec.type
    for topic in topics.ALL_TOPICS:
        assert topic in by_address
        assert topics.dlq_topic(topic) in by_address


def test_asyncapi_has_a_send_operation_per_producer() -> None:
    document = asyncapi_document()
    sent: dict[str, set[str]] = {}
    for operation in document["operations"].values():
        assert operation["action"] == "send"
        channel = _resolve(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            message = _resolve(document, ref["$ref"])
            sent.setdefault(operation["title"].split(" ")[0], set()).add(
                _resolve(document, message["$ref"])["name"]
            )
        assert channel["address"] in operation["title"]

    expected: dict[str, set[str]] = {}
    for spec in all_specs():
        expected.setdefault(spec.producer, set()).add(spec.type)
    assert sent == expected


def test_asyncapi_dead_letters_declare_the_error_headers() -> None:
    document = asyncapi_document()
    headers = _resolve(document, document["components"]["messages"]["DeadLetter"]["headers"]["$ref"])

    assert list(headers["properties"]) == [
        "error",
        "error_type",
        "original_topic",
        "original_partition",
        "original_offset",
        "attempts",
        "consumer",
        "event_type",
        "failed_at",
    ]


def test_every_asyncapi_reference_resolves() -> None:
    document = asyncapi_document()

    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        _resolve(document, ref)


def test_asyncapi_yaml_has_no_anchors() -> None:
    text = render_asyncapi_yaml()

    assert "&id" not in text
    assert "*id" not in text


def test_events_md_documents_every_topic_and_event() -> None:
    text = render_events_md()

    for topic in topics.ALL_TOPICS:
        assert f"### `{topic}`" in text
        assert f"`{topics.dlq_topic(topic)}`" in text
    for spec in all_specs():
        assert f"#### `{spec.type}`" in text
        assert f"Producer: `{spec.producer}`" in text
        for field in spec.data_model.model_fields:
            assert f"| `{field}` |" in text, f"{spec.type}.{field}"


def test_events_md_documents_the_dead_letter_headers() -> None:
    text = render_events_md()

    for header, _ in DLQ_HEADERS:
        assert f"| `{header}` |" in text


def test_events_md_example_is_a_valid_event() -> None:
    validate_event_json(json.dumps(EXAMPLE_EVENT))
    assert json.dumps(EXAMPLE_EVENT, indent=2) in render_events_md()


def test_generate_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path)]) == 0

    assert (tmp_path / EVENTS_MD).read_text(encoding="utf-8") == render_events_md()
    assert (tmp_path / ASYNCAPI_YAML).read_text(encoding="utf-8") == render_asyncapi_yaml()
    assert "wrote" in capsys.readouterr().out


def test_check_passes_on_fresh_docs(tmp_path: Path) -> None:
    main(["generate", "--out", str(tmp_path)])

    assert main(["check", "--out", str(tmp_path)]) == 0


def test_check_lists_stale_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["generate", "--out", str(tmp_path)])
    (tmp_path / EVENTS_MD).write_text("old\n", encoding="utf-8")
    (tmp_path / ASYNCAPI_YAML).unlink()
    capsys.readouterr()

    assert main(["check", "--out", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert EVENTS_MD in err
    assert ASYNCAPI_YAML in err
    assert GENERATE_COMMAND in err


def test_generate_defaults_to_docs_at_the_workspace_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["libs/x"]\n', encoding="utf-8")
    member = tmp_path / "libs" / "x"
    member.mkdir(parents=True)
    (member / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    monkeypatch.chdir(member)

    assert main(["generate"]) == 0

    assert (tmp_path / "docs" / EVENTS_MD).is_file()
    assert (tmp_path / "docs" / ASYNCAPI_YAML).is_file()


def test_repo_root_falls_back_to_the_start_folder(tmp_path: Path) -> None:
    assert find_repo_root(tmp_path) == tmp_path.resolve()


def test_this_repo_root_is_the_workspace() -> None:
    assert (REPO_ROOT / "libs" / "contracts").is_dir()
