"""The generated JSON Schemas and AsyncAPI document describe the models, and the samples fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from services.contracts import EVENT_TOPIC, EventType, Topic, encode_event
from services.contracts.schema_export import ASYNCAPI_PATH, generate, schema_path, write
from tests.unit.contracts.samples import sample_event


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return generate()


@pytest.fixture(scope="module")
def asyncapi(files: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(files[ASYNCAPI_PATH.as_posix()])
    return document


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_generation_is_deterministic(files: dict[str, str]) -> None:
    assert generate() == files


def test_there_is_one_schema_file_per_event_type_and_the_asyncapi_document(
    files: dict[str, str],
) -> None:
    expected = {schema_path(event_type).as_posix() for event_type in EventType}
    assert set(files) == expected | {"docs/events/asyncapi.yaml"}


def test_schema_files_are_sorted_indented_json_ending_in_a_newline(files: dict[str, str]) -> None:
    for event_type in EventType:
        content = files[schema_path(event_type).as_posix()]
        assert content.endswith("}\n")
        assert content == (
            json.dumps(json.loads(content), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_schema_is_a_valid_json_schema_that_accepts_its_sample(
    files: dict[str, str], event_type: EventType
) -> None:
    schema = json.loads(files[schema_path(event_type).as_posix()])
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(json.loads(encode_event(sample_event(event_type))))


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_schema_refuses_another_types_event(
    files: dict[str, str], event_type: EventType
) -> None:
    schema = json.loads(files[schema_path(event_type).as_posix()])
    other = next(t for t in EventType if t is not event_type)
    assert not Draft202012Validator(schema).is_valid(json.loads(encode_event(sample_event(other))))


def test_no_array_in_a_schema_carries_string_keywords(files: dict[str, str]) -> None:
    # pydantic can misplace a length constraint on a validated tuple as minLength.
    def arrays(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            own = [node] if node.get("type") == "array" else []
            return own + [a for value in node.values() for a in arrays(value)]
        if isinstance(node, list):
            return [a for value in node for a in arrays(value)]
        return []

    for event_type in EventType:
        for array in arrays(json.loads(files[schema_path(event_type).as_posix()])):
            assert not {"minLength", "maxLength", "pattern"} & set(array), event_type


def test_the_asyncapi_document_is_version_3(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] == "kanalhub events"
    assert asyncapi["info"]["description"]


def test_there_is_one_channel_per_topic_at_the_topics_address(asyncapi: dict[str, Any]) -> None:
    addresses = [channel["address"] for channel in asyncapi["channels"].values()]
    assert addresses == [str(topic) for topic in Topic]


def test_every_event_type_is_a_message_in_exactly_its_topics_channel(
    asyncapi: dict[str, Any],
) -> None:
    for event_type in EventType:
        holders = [
            channel["address"]
            for channel in asyncapi["channels"].values()
            if str(event_type) in channel["messages"]
        ]
        assert holders == [str(EVENT_TOPIC[event_type])], event_type


def test_every_channel_has_one_send_operation_with_all_its_messages(
    asyncapi: dict[str, Any],
) -> None:
    operations = list(asyncapi["operations"].values())
    assert len(operations) == len(asyncapi["channels"])
    for operation in operations:
        assert operation["action"] == "send"
        channel = resolve(asyncapi, operation["channel"]["$ref"])
        assert [resolve(asyncapi, m["$ref"]) for m in operation["messages"]] == list(
            channel["messages"].values()
        )


def test_every_internal_reference_resolves(asyncapi: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    internal = [ref for ref in refs(asyncapi) if ref.startswith("#/")]
    assert internal
    for ref in internal:
        resolve(asyncapi, ref)


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_message_describes_its_event_and_its_payload_accepts_the_sample(
    files: dict[str, str], asyncapi: dict[str, Any], event_type: EventType
) -> None:
    message = asyncapi["components"]["messages"][str(event_type)]
    assert message["name"] == str(event_type)
    assert message["title"]
    assert message["summary"]
    assert "\n" not in message["summary"]
    assert message["contentType"] == "application/cloudevents+json"
    headers = message["headers"]["properties"]
    assert {"ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time", "ce_subject"} <= set(
        headers
    )
    assert headers["ce_type"]["const"] == str(event_type)
    payload_file = (ASYNCAPI_PATH.parent / message["payload"]["$ref"]).as_posix()
    assert payload_file in files
    schema = json.loads(files[payload_file])
    Draft202012Validator(schema).validate(json.loads(encode_event(sample_event(event_type))))


def test_the_dead_letter_channel_documents_its_headers_and_carries_raw_bytes(
    asyncapi: dict[str, Any],
) -> None:
    channel = asyncapi["channels"]["deadletter"]
    assert channel["address"] == str(Topic.DEADLETTER)
    (reference,) = channel["messages"].values()
    message = resolve(asyncapi, reference["$ref"])
    assert {
        "dlq_reason",
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
        "dlq_consumer_group",
        "dlq_failed_at",
    } <= set(message["headers"]["properties"])
    assert message["payload"]["format"] == "binary"


def test_the_yaml_uses_no_anchors_so_every_message_reads_on_its_own(files: dict[str, str]) -> None:
    text = files[ASYNCAPI_PATH.as_posix()]
    assert "&id" not in text
    assert "*id" not in text


def test_write_creates_the_files_and_removes_stale_schemas(tmp_path: Path) -> None:
    stale = tmp_path / "docs/events/schemas/dk.kanalhub.kvik.session.ended.v1.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    keep = tmp_path / "docs/events/README.md"
    keep.write_text("hand-written\n")

    written = write(tmp_path)

    files = generate()
    assert sorted(written) == sorted(tmp_path / relative for relative in files)
    for relative, content in files.items():
        assert (tmp_path / relative).read_bytes() == content.encode()
    assert not stale.exists()
    assert keep.exists()
