"""Generate the checked-in event documentation from the models: JSON Schemas and AsyncAPI 3.

``python -m services.contracts.schema_export [root]`` (or ``make schemas``) rewrites
``docs/events`` under ``root`` (default: the current directory). The output is deterministic, so
a test can compare it byte for byte with the checked-in copy and fail on drift.
"""

from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from services.contracts.envelope import ENVELOPES, PAYLOADS, STRUCTURED_CONTENT_TYPE
from services.contracts.topics import Topic
from services.contracts.types import EVENT_TOPIC, EventType

EVENTS_DIR: Final = Path("docs/events")
SCHEMAS_DIR: Final = EVENTS_DIR / "schemas"
ASYNCAPI_PATH: Final = EVENTS_DIR / "asyncapi.yaml"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

# Who sends on each topic; the dead-letter topic is written by every service's consumer loop.
PUBLISHERS: Final[dict[Topic, str]] = {
    Topic.REGISTRY: "registry",
    Topic.KVIK: "kvik",
    Topic.MOBILE: "mobile",
    Topic.CONTACTS: "metrics",
    Topic.DEADLETTER: "every service's consumer loop",
}

TOPIC_DESCRIPTIONS: Final[dict[Topic, str]] = {
    Topic.REGISTRY: "Sites, entries and catalogue services: full state on every change.",
    Topic.KVIK: "KVIK self-service sessions, kiosk status and requests for staff help.",
    Topic.MOBILE: "Mobile citizen-service visits and the contacts recorded at them.",
    Topic.CONTACTS: "Daily contact counts delivered by channel systems outside kanalhub.",
    Topic.DEADLETTER: (
        "Records a consumer could not decode or handle, byte for byte as they were read, "
        "with the reason and origin in dlq_ headers. The original record's headers are kept."
    ),
}

DEADLETTER_MESSAGE: Final = "kanalhub.deadletter"

# Written by services/plumbing/consumer.py when it dead-letters a record.
DEADLETTER_HEADERS: Final[dict[str, str]] = {
    "dlq_reason": "Machine-readable reason, e.g. invalid_json, personal_data, unknown_type.",
    "dlq_detail": "A short human explanation (at most 1000 characters, never the value).",
    "dlq_original_topic": "The topic the record was read from.",
    "dlq_original_partition": "Its partition, as decimal text.",
    "dlq_original_offset": "Its offset, as decimal text.",
    "dlq_consumer_group": "The consumer group that gave up on it.",
    "dlq_failed_at": "When it was dead-lettered, ISO 8601 with timezone.",
}


def schema_path(event_type: EventType) -> Path:
    """Where the JSON Schema of ``event_type`` is checked in, relative to the repository root."""
    return SCHEMAS_DIR / f"{event_type}.json"


def json_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a whole event of ``event_type``: envelope and payload."""
    schema = ENVELOPES[event_type].model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def generate() -> dict[str, str]:
    """Every generated file: relative path (POSIX) -> exact content."""
    files = {
        schema_path(event_type).as_posix(): _dump_json(json_schema(event_type))
        for event_type in EventType
    }
    files[ASYNCAPI_PATH.as_posix()] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True
    )
    return files


def write(root: Path) -> list[Path]:
    """Write the generated files under ``root`` and delete schema files no model produces.

    Returns the paths written.
    """
    files = generate()
    written: list[Path] = []
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # newline="" keeps "\n" on every platform, so the drift test compares equal bytes.
        path.write_text(content, encoding="utf-8", newline="")
        written.append(path)
    for stale in sorted((root / SCHEMAS_DIR).glob("*.json")):
        if stale.relative_to(root).as_posix() not in files:
            stale.unlink()
    return written


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of all topics, as plain data ready for YAML."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in Topic:
        channel_id = _channel_id(topic)
        if topic is Topic.DEADLETTER:
            message_ids = [DEADLETTER_MESSAGE]
            messages[DEADLETTER_MESSAGE] = _deadletter_message()
        else:
            message_ids = [str(t) for t in EventType if EVENT_TOPIC[t] is topic]
            for event_type in EventType:
                if EVENT_TOPIC[event_type] is topic:
                    messages[str(event_type)] = _event_message(event_type)
        channels[channel_id] = {
            "address": str(topic),
            "title": str(topic),
            "description": TOPIC_DESCRIPTIONS[topic],
            "messages": {
                message_id: {"$ref": f"#/components/messages/{message_id}"}
                for message_id in message_ids
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"{PUBLISHERS[topic]} publishes on {topic}",
            "summary": f"Sent by {_publisher_phrase(topic)}.",
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{message_id}"}
                for message_id in message_ids
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "kanalhub events",
            "version": "1.0.0",
            "description": (
                "The events the four kanalhub services exchange over Kafka. Every record value "
                "is a CloudEvents 1.0 event in structured JSON mode; its `type` decides the "
                "schema of `data`. The Kafka key is the event's `subject`, the id of the "
                "aggregate it is about, so one aggregate's events stay in order. Delivery is "
                "at least once: consumers dedupe on the event `id`. No event carries personal "
                "data: no CPR numbers, no citizen names, no free text; staff appear as "
                "pseudonymous ids.\n\n"
                "Generated from services/contracts by `make schemas`; do not edit by hand."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _channel_id(topic: Topic) -> str:
    return topic.name.lower()


def _publisher_phrase(topic: Topic) -> str:
    publisher = PUBLISHERS[topic]
    return publisher if topic is Topic.DEADLETTER else f"the {publisher} service"


def _summary(event_type: EventType) -> str:
    doc = inspect.getdoc(PAYLOADS[event_type]) or ""
    return doc.splitlines()[0] if doc else ""


def _description(event_type: EventType) -> str:
    # Docstrings are wrapped for the source file; a rendered document wants whole paragraphs.
    doc = inspect.getdoc(PAYLOADS[event_type]) or ""
    paragraphs = (" ".join(paragraph.split()) for paragraph in doc.split("\n\n"))
    return "\n\n".join(paragraphs)


def _event_message(event_type: EventType) -> dict[str, Any]:
    payload = PAYLOADS[event_type]
    return {
        "name": str(event_type),
        "title": payload.__name__,
        "summary": _summary(event_type),
        "description": _description(event_type),
        "contentType": "application/cloudevents+json",
        "headers": _cloudevent_headers(event_type),
        # Relative to this document, so the YAML and the schema files travel together.
        "payload": {"$ref": f"./schemas/{schema_path(event_type).name}"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": "The subject: " + ":".join(payload.key_fields) + ".",
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _cloudevent_headers(event_type: EventType) -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "CloudEvents Kafka protocol binding, structured mode; the ce_ attributes repeat "
            "the envelope so that tools can route without parsing the value."
        ),
        "required": [
            "content-type",
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
        ],
        "properties": {
            "content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE},
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {"type": "string", "format": "uuid", "description": "The event id."},
            "ce_source": {"type": "string", "description": "The event source."},
            "ce_type": {"type": "string", "const": str(event_type)},
            "ce_time": {"type": "string", "format": "date-time", "description": "The time."},
            "ce_subject": {"type": "string", "description": "The subject, also the Kafka key."},
        },
    }


def _deadletter_message() -> dict[str, Any]:
    return {
        "name": DEADLETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A record that could not be processed, kept with the reason.",
        "description": TOPIC_DESCRIPTIONS[Topic.DEADLETTER],
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": list(DEADLETTER_HEADERS),
            "properties": {
                name: {"type": "string", "description": description}
                for name, description in DEADLETTER_HEADERS.items()
            },
        },
        "payload": {
            "type": "string",
            "format": "binary",
            "description": "The original record value, byte for byte (it may not even be JSON).",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key."},
                "bindingVersion": "0.5.0",
            }
        },
    }


def _dump_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Regenerate ``docs/events`` under the given root (default: the current directory)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("root", nargs="?", type=Path, default=Path())
    args = parser.parse_args(argv)
    for path in write(args.root):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
