"""Payload models: closed, immutable, CPR-free, with the few rules that keep events meaningful."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import pytest
from pydantic import ValidationError

from services.contracts import (
    PAYLOADS,
    ContactSource,
    CountReported,
    EntryUpserted,
    EventType,
    HelpAnswered,
    HelpChannel,
    Payload,
    SessionReferred,
    VisitPlanned,
)
from services.contracts.payloads.registry import OpeningException, WeeklyOpening
from tests.unit.contracts.samples import CPH, T0, sample_payload, sample_payloads

CPR = "010203-1234"


def replaced(payload: Payload, **changes: object) -> dict[str, Any]:
    """The payload's fields as Python data, with some changed."""
    return {**payload.model_dump(), **changes}


def string_leaves(value: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths to every plain string (not enum member) inside dumped model data."""
    if isinstance(value, str) and not isinstance(value, Enum):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from string_leaves(item, (*path, index))


def with_value_at(data: Any, path: tuple[Any, ...], value: str) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: with_value_at(data[head], rest, value)}
    items = list(data)
    items[head] = with_value_at(items[head], rest, value)
    return items


CPR_CASES = [
    pytest.param(event_type, path, id=f"{event_type}:{'.'.join(map(str, path))}")
    for event_type, payload in sample_payloads().items()
    for path in string_leaves(payload.model_dump())
]


@pytest.mark.parametrize(("event_type", "path"), CPR_CASES)
def test_a_cpr_number_in_any_string_field_fails_validation(
    event_type: EventType, path: tuple[Any, ...]
) -> None:
    data = with_value_at(sample_payload(event_type).model_dump(), path, CPR)
    with pytest.raises(ValidationError):
        PAYLOADS[event_type].model_validate(data)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (EventType.KVIK_SESSION_COMPLETED, "kiosk_id"),
        (EventType.MOBILE_CONTACT_RECORDED, "contact_id"),
        (EventType.REGISTRY_SITE_UPSERTED, "name"),
    ],
)
def test_a_cpr_number_that_fits_the_fields_format_is_refused_as_personal_data(
    event_type: EventType, field: str
) -> None:
    payload = sample_payload(event_type)
    with pytest.raises(ValidationError, match="looks like a CPR number") as caught:
        type(payload).model_validate(replaced(payload, **{field: CPR}))
    assert [error["type"] for error in caught.value.errors()] == ["personal_data"]


def test_a_cpr_number_in_a_nested_model_is_refused_as_personal_data() -> None:
    payload = sample_payload(EventType.REGISTRY_SITE_UPSERTED)
    data = replaced(payload)
    data["address"] = {**data["address"], "street": f"Borger {CPR}"}
    with pytest.raises(ValidationError) as caught:
        type(payload).model_validate(data)
    assert caught.value.errors()[0]["type"] == "personal_data"


def test_the_refused_value_is_not_echoed_in_the_error() -> None:
    payload = sample_payload(EventType.REGISTRY_SITE_UPSERTED)
    with pytest.raises(ValidationError) as caught:
        type(payload).model_validate(replaced(payload, name=f"Borger {CPR}"))
    assert CPR not in str(caught.value)


@pytest.mark.parametrize("event_type", list(EventType))
def test_an_unknown_field_is_refused(event_type: EventType) -> None:
    payload = sample_payload(event_type)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        type(payload).model_validate(replaced(payload, note="anything"))


@pytest.mark.parametrize("event_type", list(EventType))
def test_payloads_are_immutable(event_type: EventType) -> None:
    payload = sample_payload(event_type)
    field = next(iter(type(payload).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(payload, field, None)


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_payload_documents_what_happened_and_who_publishes_it(
    event_type: EventType,
) -> None:
    payload = PAYLOADS[event_type]
    doc = payload.__dict__.get("__doc__")
    assert doc, f"{payload.__name__} has no docstring of its own"
    assert "Published by the" in inspect.cleandoc(doc)


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_payload_names_existing_key_fields(event_type: EventType) -> None:
    payload = PAYLOADS[event_type]
    assert payload.key_fields
    assert set(payload.key_fields) <= set(payload.model_fields)


def test_the_count_key_joins_source_day_district_and_service() -> None:
    payload = sample_payload(EventType.METRICS_COUNT_REPORTED)
    assert payload.aggregate_id == "digital_platform:2024-01-15:norrebro:change_of_address"


def test_a_naive_datetime_is_refused() -> None:
    payload = sample_payload(EventType.MOBILE_CONTACT_RECORDED)
    with pytest.raises(ValidationError, match="timezone"):
        type(payload).model_validate(replaced(payload, at=datetime(2024, 1, 15, 10, 0)))


def test_a_staff_id_must_be_pseudonymous() -> None:
    payload = sample_payload(EventType.MOBILE_VISIT_PLANNED)
    with pytest.raises(ValidationError, match="staff"):
        VisitPlanned.model_validate(replaced(payload, staff=("Jens Hansen",)))


def test_a_visit_must_end_after_it_starts() -> None:
    payload = sample_payload(EventType.MOBILE_VISIT_PLANNED)
    with pytest.raises(ValidationError, match="ends_at"):
        VisitPlanned.model_validate(replaced(payload, ends_at=T0 - timedelta(minutes=1)))


def test_a_visit_offers_each_service_once() -> None:
    payload = sample_payload(EventType.MOBILE_VISIT_PLANNED)
    with pytest.raises(ValidationError, match="unique"):
        VisitPlanned.model_validate(replaced(payload, services=("passport", "passport")))


def test_a_visit_offers_at_least_one_service() -> None:
    payload = sample_payload(EventType.MOBILE_VISIT_PLANNED)
    with pytest.raises(ValidationError, match="at least 1 item"):
        VisitPlanned.model_validate(replaced(payload, services=()))


def test_a_session_cannot_end_before_it_starts() -> None:
    payload = sample_payload(EventType.KVIK_SESSION_REFERRED)
    with pytest.raises(ValidationError, match="ended_at"):
        SessionReferred.model_validate(replaced(payload, ended_at=T0 - timedelta(seconds=1)))


def test_a_referral_must_send_the_citizen_to_another_channel() -> None:
    payload = sample_payload(EventType.KVIK_SESSION_REFERRED)
    with pytest.raises(ValidationError, match="another channel"):
        SessionReferred.model_validate(replaced(payload, referred_to="kvik"))


def test_help_is_requested_by_video_or_phone_only() -> None:
    payload = sample_payload(EventType.KVIK_HELP_ANSWERED)
    with pytest.raises(ValidationError):
        HelpAnswered.model_validate(replaced(payload, channel=HelpChannel.IN_PERSON))


def test_help_cannot_be_answered_before_it_was_requested() -> None:
    payload = sample_payload(EventType.KVIK_HELP_ANSWERED)
    with pytest.raises(ValidationError, match="answered_at"):
        HelpAnswered.model_validate(replaced(payload, answered_at=T0))


def test_a_count_must_be_in_its_sources_channel() -> None:
    payload = sample_payload(EventType.METRICS_COUNT_REPORTED)
    with pytest.raises(ValidationError, match="digital channel only"):
        CountReported.model_validate(replaced(payload, channel="phone"))
    CountReported.model_validate(
        replaced(payload, source=ContactSource.CONTACT_CENTRE, channel="phone")
    )


def test_a_count_cannot_be_negative() -> None:
    payload = sample_payload(EventType.METRICS_COUNT_REPORTED)
    with pytest.raises(ValidationError):
        CountReported.model_validate(replaced(payload, assisted=-1))


def test_a_local_entry_must_name_its_district_but_a_city_wide_one_need_not() -> None:
    payload = sample_payload(EventType.REGISTRY_ENTRY_UPSERTED)
    with pytest.raises(ValidationError, match="district"):
        EntryUpserted.model_validate(replaced(payload, district=None))
    EntryUpserted.model_validate(replaced(payload, district=None, coverage="city_wide"))


def test_staff_help_is_never_none() -> None:
    payload = sample_payload(EventType.REGISTRY_ENTRY_UPSERTED)
    with pytest.raises(ValidationError):
        EntryUpserted.model_validate(replaced(payload, staff_help=("none",)))


def test_an_opening_interval_must_close_after_it_opens() -> None:
    with pytest.raises(ValidationError, match="closes"):
        WeeklyOpening(weekday=0, opens="17:00", closes="10:00")
    with pytest.raises(ValidationError):
        WeeklyOpening(weekday=7, opens="10:00", closes="17:00")
    with pytest.raises(ValidationError):
        WeeklyOpening(weekday=0, opens="9:00", closes="17:00")


def test_a_closed_day_has_no_hours_and_an_open_day_needs_them() -> None:
    day = datetime(2024, 12, 24, tzinfo=CPH).date()
    with pytest.raises(ValidationError, match="closed day"):
        OpeningException(date=day, closed=True, opens="10:00", closes="12:00")
    with pytest.raises(ValidationError, match="open day"):
        OpeningException(date=day, closed=False)


def test_an_entry_has_at_most_one_exception_per_date() -> None:
    payload = sample_payload(EventType.REGISTRY_ENTRY_UPSERTED)
    data = replaced(payload)
    exception = data["opening_hours"]["exceptions"][0]
    data["opening_hours"]["exceptions"] = (exception, exception)
    with pytest.raises(ValidationError, match="unique"):
        EntryUpserted.model_validate(data)


def test_a_name_is_one_line() -> None:
    payload = sample_payload(EventType.REGISTRY_SERVICE_UPSERTED)
    with pytest.raises(ValidationError):
        type(payload).model_validate(replaced(payload, name="Flytning\nring til borgeren"))
