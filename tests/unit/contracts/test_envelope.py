"""The CloudEvents envelope: build, encode, decode, headers, and every way decoding can fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

import pytest
from pydantic import ValidationError

from services.contracts import (
    ENVELOPES,
    EVENT_TOPIC,
    PAYLOADS,
    CloudEvent,
    EventDecodeError,
    EventType,
    decode_event,
    encode_event,
    kafka_headers,
    new_encoded_event,
    new_event,
)
from services.contracts.envelope import AnyEvent
from tests.unit.contracts.samples import sample_event, sample_events, sample_payload

CPR = "010203-1234"


def as_json(event: CloudEvent) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(encode_event(event))
    return parsed


def decode_failure(document: object) -> EventDecodeError:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw)
    return caught.value


def test_every_event_type_has_exactly_one_payload_envelope_and_topic() -> None:
    assert list(PAYLOADS) == list(EventType)
    assert list(ENVELOPES) == list(EventType)
    assert list(EVENT_TOPIC) == list(EventType)


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_envelope_declares_its_type_and_payload(event_type: EventType) -> None:
    fields = ENVELOPES[event_type].model_fields
    assert get_args(fields["type"].annotation) == (event_type,)
    assert fields["data"].annotation is PAYLOADS[event_type]


def test_the_union_holds_every_envelope_once() -> None:
    members = get_args(get_args(AnyEvent)[0])
    assert sorted(m.__name__ for m in members) == sorted(e.__name__ for e in ENVELOPES.values())


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_survives_an_encode_decode_round_trip(event_type: EventType) -> None:
    event = sample_event(event_type)
    raw = encode_event(event)
    decoded = decode_event(raw)
    assert type(decoded) is ENVELOPES[event_type]
    assert decoded == event
    assert encode_event(decoded) == raw


def test_decode_accepts_text_as_well_as_bytes() -> None:
    event = sample_event(EventType.KVIK_KIOSK_ONLINE)
    assert decode_event(encode_event(event).decode()) == event


def test_encoding_is_compact_json_with_the_cloudevents_attributes() -> None:
    event = sample_event(EventType.MOBILE_CONTACT_RECORDED)
    raw = encode_event(event)
    assert b"\n" not in raw
    assert b'", "' not in raw
    document = json.loads(raw)
    assert list(document) == [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "data",
    ]
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert document["subject"] == document["data"]["visit_id"]


def test_new_event_fills_in_id_time_and_subject() -> None:
    before = datetime.now(UTC)
    payload = sample_payload(EventType.KVIK_SESSION_COMPLETED)
    event = new_event(EventType.KVIK_SESSION_COMPLETED, payload, source="/kanalhub/kvik")
    assert isinstance(event.id, UUID)
    assert event.id.version == 4
    assert event.time.tzinfo is not None
    assert before <= event.time <= datetime.now(UTC)
    assert event.subject == payload.aggregate_id
    assert event.data is payload


def test_new_event_gives_each_event_its_own_id() -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    first = new_event(EventType.KVIK_KIOSK_ONLINE, payload, source="/kanalhub/kvik")
    second = new_event(EventType.KVIK_KIOSK_ONLINE, payload, source="/kanalhub/kvik")
    assert first.id != second.id


def test_new_event_refuses_a_payload_of_another_type() -> None:
    payload = sample_payload(EventType.KVIK_SESSION_COMPLETED)
    with pytest.raises(TypeError, match="SessionAbandoned"):
        new_event(EventType.KVIK_SESSION_ABANDONED, payload, source="/kanalhub/kvik")


def test_new_event_refuses_a_subject_other_than_the_aggregate_id() -> None:
    payload = sample_payload(EventType.MOBILE_CONTACT_RECORDED)
    with pytest.raises(ValidationError, match="aggregate id"):
        new_event(
            EventType.MOBILE_CONTACT_RECORDED,
            payload,
            source="/kanalhub/mobile",
            subject="contact-0001",
        )


def test_new_event_refuses_a_naive_time() -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(ValidationError, match="timezone"):
        new_event(
            EventType.KVIK_KIOSK_ONLINE,
            payload,
            source="/kanalhub/kvik",
            time=datetime(2024, 1, 15, 10, 0),
        )


@pytest.mark.parametrize("source", ["", "not a uri", f"/kanalhub/{CPR}"])
def test_new_event_refuses_a_bad_source(source: str) -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(ValidationError):
        new_event(EventType.KVIK_KIOSK_ONLINE, payload, source=source)


def test_events_are_immutable() -> None:
    event = sample_event(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(ValidationError, match="frozen"):
        event.subject = "other"  # type: ignore[misc]


def test_bad_json_is_an_invalid_json_error() -> None:
    assert decode_failure(b"{not json").reason == "invalid_json"
    assert decode_failure(b"\xff\xfe").reason == "invalid_json"
    assert decode_failure(b"").reason == "invalid_json"


def test_an_unknown_type_is_an_unknown_type_error() -> None:
    document = as_json(sample_event(EventType.KVIK_KIOSK_ONLINE))
    document["type"] = "dk.kanalhub.kvik.kiosk.exploded.v1"
    error = decode_failure(document)
    assert error.reason == "unknown_type"
    assert isinstance(error, ValueError)


def test_a_payload_of_another_type_is_an_invalid_payload_error() -> None:
    document = as_json(sample_event(EventType.KVIK_SESSION_COMPLETED))
    document["data"] = as_json(sample_event(EventType.KVIK_KIOSK_ONLINE))["data"]
    assert decode_failure(document).reason == "invalid_payload"


def test_an_extra_payload_field_is_an_invalid_payload_error() -> None:
    document = as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED))
    document["data"]["note"] = "called back"
    error = decode_failure(document)
    assert error.reason == "invalid_payload"
    assert "data.note" in str(error)


def test_a_naive_datetime_in_the_payload_is_an_invalid_payload_error() -> None:
    document = as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED))
    document["data"]["at"] = "2024-01-15T10:25:00"
    assert decode_failure(document).reason == "invalid_payload"


def test_a_naive_event_time_is_an_invalid_envelope_error() -> None:
    document = as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED))
    document["time"] = "2024-01-15T11:00:00"
    assert decode_failure(document).reason == "invalid_envelope"


@pytest.mark.parametrize(
    "change",
    [
        {"specversion": "0.3"},
        {"id": "not-a-uuid"},
        {"datacontenttype": "text/plain"},
        {"subject": "some-other-visit"},
        {"traceparent": "00-abc"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_bad_envelope_attribute_is_an_invalid_envelope_error(change: dict[str, str]) -> None:
    document = {**as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED)), **change}
    assert decode_failure(document).reason == "invalid_envelope"


@pytest.mark.parametrize("document", [[1, 2], "text", {"data": {}}], ids=repr)
def test_a_record_without_a_type_is_an_invalid_envelope_error(document: object) -> None:
    assert decode_failure(document).reason == "invalid_envelope"


@pytest.mark.parametrize(
    "where",
    ["payload id", "payload extra field", "subject", "type", "invalid payload"],
)
def test_a_raw_event_with_a_cpr_number_is_a_personal_data_error(where: str) -> None:
    document = as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED))
    if where == "payload id":
        document["data"]["contact_id"] = CPR
    elif where == "payload extra field":
        document["data"]["citizen"] = f"borger {CPR}"
    elif where == "subject":
        document["subject"] = CPR
        document["data"]["visit_id"] = CPR
    elif where == "type":
        document["type"] = f"dk.kanalhub.{CPR}"
    else:
        document["data"]["service"] = CPR
        document["data"]["district"] = "atlantis"
    error = decode_failure(document)
    assert error.reason == "personal_data"
    assert CPR not in str(error)
    assert error.__cause__ is None


def test_a_decode_error_never_echoes_the_refused_value() -> None:
    document = as_json(sample_event(EventType.MOBILE_CONTACT_RECORDED))
    document["data"]["district"] = "secret-district-value"
    error = decode_failure(document)
    assert "secret-district-value" not in str(error)
    assert "secret-district-value" not in str(error.__cause__)


def test_kafka_headers_follow_the_structured_mode_binding() -> None:
    event = sample_event(EventType.KVIK_SESSION_COMPLETED)
    headers = kafka_headers(event)
    assert all(isinstance(value, bytes) for _, value in headers)
    assert len({name for name, _ in headers}) == len(headers)
    as_dict = {name: value.decode() for name, value in headers}
    document = as_json(event)
    assert as_dict == {
        "content-type": "application/cloudevents+json; charset=UTF-8",
        "ce_specversion": "1.0",
        "ce_id": str(event.id),
        "ce_source": "/kanalhub/kvik",
        "ce_type": "dk.kanalhub.kvik.session.completed.v1",
        "ce_time": document["time"],
        "ce_subject": event.subject,
    }


def test_kafka_header_time_is_the_same_instant_as_the_event_time() -> None:
    event = sample_event(EventType.KVIK_KIOSK_ONLINE)
    ce_time = dict(kafka_headers(event))["ce_time"].decode()
    assert datetime.fromisoformat(ce_time) == event.time


def test_samples_cover_every_event_type_with_distinct_ids() -> None:
    events = sample_events()
    assert list(events) == list(EventType)
    assert len({event.id for event in events.values()}) == len(events)
    assert all(event.time.utcoffset() == timedelta(hours=1) for event in events.values())


@pytest.mark.parametrize("event_type", list(EventType))
def test_an_encoded_event_is_byte_for_byte_the_validated_one(event_type: EventType) -> None:
    event = sample_event(event_type)
    encoded = new_encoded_event(
        event_type, event.data, source=event.source, time=event.time, event_id=event.id
    )
    assert encoded.value == encode_event(event)
    assert encoded.headers == kafka_headers(event)
    assert (encoded.id, encoded.type, encoded.subject) == (event.id, event.type, event.subject)
    assert decode_event(encoded.value) == event


def test_an_encoded_event_refuses_a_payload_of_another_type() -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(TypeError):
        new_encoded_event(EventType.KVIK_KIOSK_OFFLINE, payload, source="/kanalhub/kvik")


@pytest.mark.parametrize("source", ["", "/kanalhub kvik", "/kanalhub/010203-1234"])
def test_an_encoded_event_refuses_a_bad_source(source: str) -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(ValueError, match="source"):
        new_encoded_event(EventType.KVIK_KIOSK_ONLINE, payload, source=source)


def test_an_encoded_event_refuses_a_naive_time() -> None:
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    with pytest.raises(ValueError, match="timezone"):
        new_encoded_event(
            EventType.KVIK_KIOSK_ONLINE,
            payload,
            source="/kanalhub/kvik",
            time=datetime(2026, 1, 1, 12, 0),
        )


def test_an_encoded_event_gets_a_new_id_and_the_current_time_by_default() -> None:
    before = datetime.now(UTC)
    payload = sample_payload(EventType.KVIK_KIOSK_ONLINE)
    first = new_encoded_event(EventType.KVIK_KIOSK_ONLINE, payload, source="/kanalhub/kvik")
    second = new_encoded_event(EventType.KVIK_KIOSK_ONLINE, payload, source="/kanalhub/kvik")
    assert first.id != second.id
    assert first.id.version == 4
    assert before <= first.time <= datetime.now(UTC)
