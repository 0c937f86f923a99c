"""The relay's entry check and error classification (issue 19, item 1): what is set aside, what
is retried for ever, and that a reason never carries a value of the entry."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aiokafka.errors import (
    BrokerNotAvailableError,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    ProducerClosed,
    TopicAuthorizationFailedError,
)

from services.plumbing.outbox_quarantine import (
    QUARANTINE_FIELDS,
    decode_fields,
    entry_problem,
    quarantine_fields,
    refusal_reason,
    refused_for_good,
)

TOPICS = frozenset({"kanalhub.mobile.v1"})
SECRET = "0102031234"  # stands for any payload value


def good_entry() -> dict[str, str]:
    return {
        "id": "7d0c6c0e-0000-4000-8000-000000000001",
        "type": "mobile.contact.recorded.v1",
        "topic": "kanalhub.mobile.v1",
        "key": f"visit-{SECRET}",
        "value": json.dumps({"cpr": SECRET}),
        "headers": json.dumps([["ce_id", "x"], ["content-type", "application/json"]]),
    }


def test_a_well_formed_entry_has_no_problem() -> None:
    assert entry_problem(good_entry(), TOPICS) is None


@pytest.mark.parametrize("field", ["id", "type", "topic", "key", "value", "headers"])
def test_a_missing_field_is_named(field: str) -> None:
    entry = good_entry()
    del entry[field]
    assert entry_problem(entry, TOPICS) == f"missing_field:{field}"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (f"{{not json {SECRET}", "headers_not_json"),
        (json.dumps({"ce_id": SECRET}), "headers_not_pairs"),
        (json.dumps([["ce_id", SECRET, "third"]]), "headers_not_pairs"),
        (json.dumps([["ce_id", 12]]), "headers_not_pairs"),
    ],
)
def test_headers_must_be_a_json_list_of_string_pairs(headers: str, reason: str) -> None:
    entry = good_entry() | {"headers": headers}
    problem = entry_problem(entry, TOPICS)
    assert problem == reason
    assert SECRET not in problem


def test_a_topic_outside_the_hub_is_refused_without_naming_it() -> None:
    problem = entry_problem(good_entry() | {"topic": f"kanalhub.{SECRET}"}, TOPICS)
    assert problem == "unknown_topic"


def test_bytes_that_are_not_utf8_are_found_and_survive_the_move_byte_for_byte() -> None:
    raw = {b"id": b"1", b"value": b"\xff\xfe" + SECRET.encode(), b"odd\xff": b"x"}
    fields = decode_fields(raw) | {
        k: v for k, v in good_entry().items() if k not in ("id", "value")
    }
    assert entry_problem(fields, TOPICS) == "not_utf8:value"
    moved = quarantine_fields(fields, "not_utf8:value", "1-0", dt.datetime.now(dt.UTC))
    assert moved[b"value"] == raw[b"value"]
    assert moved[b"odd\xff"] == b"x"
    fields["value"] = "fine"
    assert entry_problem(fields, TOPICS) == "not_utf8"  # the odd field, not named


def test_the_quarantine_adds_reason_time_and_entry_id_to_the_original_fields() -> None:
    at = dt.datetime(2026, 12, 7, 21, 0, tzinfo=dt.UTC)
    moved = quarantine_fields(good_entry(), "headers_not_json", "17-3", at)
    assert {k.decode(): v.decode() for k, v in moved.items()} == good_entry() | {
        "quarantine_reason": "headers_not_json",
        "quarantine_at": at.isoformat(),
        "quarantine_entry_id": "17-3",
    }
    assert set(QUARANTINE_FIELDS) <= {k.decode() for k in moved}


@pytest.mark.parametrize("error", [MessageSizeTooLargeError(), InvalidTopicError()])
def test_errors_that_name_the_record_are_refusals_for_good(error: Exception) -> None:
    assert refused_for_good(error)
    assert refusal_reason(error) == f"refused:{type(error).__name__}"


@pytest.mark.parametrize(
    "error",
    [
        # aiokafka marks these not retriable, yet they are outages or configuration: retry.
        KafkaTimeoutError(),
        BrokerNotAvailableError(),
        ProducerClosed(),
        TopicAuthorizationFailedError(),
        # and the retriable ones
        KafkaConnectionError(),
        NotLeaderForPartitionError(),
        TimeoutError(),
        RuntimeError("the Kafka producer is not connected yet"),
    ],
)
def test_outages_and_configuration_errors_are_never_refusals(error: Exception) -> None:
    assert not refused_for_good(error)
