"""The CloudEvents 1.0 envelope (structured JSON mode) and the one way to build, encode and read it.

Every record on a contract topic is one JSON object: the CloudEvents attributes plus ``data``,
the payload model of its ``type``. Each event type has its own envelope class whose ``type`` is a
literal, and all of them form one discriminated union, read with one ``TypeAdapter``; so a
decoded event is always the exact class of its type, with its payload fully validated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Final, Generic, Literal, Self, cast
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from typing_extensions import TypeVar

from services.contracts.guard import find_cpr
from services.contracts.payloads import (
    ContactRecorded,
    CountReported,
    DeskDayReported,
    DeskTicketEnded,
    DistrictShareChanged,
    EntryRetired,
    EntryUpserted,
    HelpAnswered,
    HelpRequested,
    KioskOffline,
    KioskOnline,
    KioskRegistered,
    Payload,
    ServiceRetired,
    ServiceUpserted,
    SessionAbandoned,
    SessionCompleted,
    SessionReferred,
    SiteRetired,
    SiteUpserted,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
)
from services.contracts.topics import Topic
from services.contracts.types import EVENT_TOPIC, EventType

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
"""The Kafka ``content-type`` header of a structured-mode CloudEvent."""

# Covariant, so that a SessionCompletedEvent is a CloudEvent (= CloudEvent[Payload]) to mypy;
# the default lets code that does not care about the payload write plain ``CloudEvent``.
DataT = TypeVar("DataT", bound=Payload, default=Payload, covariant=True)
PayloadT = TypeVar("PayloadT", bound=Payload)


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event in structured JSON mode; ``data`` is the payload of ``type``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    specversion: Literal["1.0"]
    """The CloudEvents version."""
    id: UUID
    """Unique per event; a redelivered or replayed event keeps its id, consumers dedupe on it."""
    source: Annotated[str, StringConstraints(pattern=r"^\S+$")]
    """URI-reference of the producer, e.g. ``/kanalhub/kvik``."""
    type: EventType
    """The event type, ``dk.kanalhub.<service>.<noun>.<verb>.v<N>``; decides ``data``."""
    time: AwareDatetime
    """When it happened (not when it was sent); aggregates are bucketed by this time."""
    subject: Annotated[str, StringConstraints(min_length=1)]
    """The aggregate id the event is about; also the Kafka key."""
    datacontenttype: Literal["application/json"]
    data: DataT

    @model_validator(mode="after")
    def _subject_is_key_and_no_personal_data(self) -> Self:
        if find_cpr(self.source) is not None or find_cpr(self.subject) is not None:
            raise PydanticCustomError(
                "personal_data",
                "source or subject looks like a CPR number; events must not carry personal data",
            )
        if self.subject != self.data.aggregate_id:
            # A subject other than the payload's aggregate id would put the event on another
            # partition than its siblings and break their order.
            raise ValueError("subject must be the payload's aggregate id")
        return self


class SiteUpsertedEvent(CloudEvent[SiteUpserted]):
    """Envelope of dk.kanalhub.registry.site.upserted.v1."""

    type: Literal[EventType.REGISTRY_SITE_UPSERTED]


class SiteRetiredEvent(CloudEvent[SiteRetired]):
    """Envelope of dk.kanalhub.registry.site.retired.v1."""

    type: Literal[EventType.REGISTRY_SITE_RETIRED]


class EntryUpsertedEvent(CloudEvent[EntryUpserted]):
    """Envelope of dk.kanalhub.registry.entry.upserted.v1."""

    type: Literal[EventType.REGISTRY_ENTRY_UPSERTED]


class EntryRetiredEvent(CloudEvent[EntryRetired]):
    """Envelope of dk.kanalhub.registry.entry.retired.v1."""

    type: Literal[EventType.REGISTRY_ENTRY_RETIRED]


class ServiceUpsertedEvent(CloudEvent[ServiceUpserted]):
    """Envelope of dk.kanalhub.registry.service.upserted.v1."""

    type: Literal[EventType.REGISTRY_SERVICE_UPSERTED]


class ServiceRetiredEvent(CloudEvent[ServiceRetired]):
    """Envelope of dk.kanalhub.registry.service.retired.v1."""

    type: Literal[EventType.REGISTRY_SERVICE_RETIRED]


class SessionCompletedEvent(CloudEvent[SessionCompleted]):
    """Envelope of dk.kanalhub.kvik.session.completed.v1."""

    type: Literal[EventType.KVIK_SESSION_COMPLETED]


class SessionAbandonedEvent(CloudEvent[SessionAbandoned]):
    """Envelope of dk.kanalhub.kvik.session.abandoned.v1."""

    type: Literal[EventType.KVIK_SESSION_ABANDONED]


class SessionReferredEvent(CloudEvent[SessionReferred]):
    """Envelope of dk.kanalhub.kvik.session.referred.v1."""

    type: Literal[EventType.KVIK_SESSION_REFERRED]


class KioskRegisteredEvent(CloudEvent[KioskRegistered]):
    """Envelope of dk.kanalhub.kvik.kiosk.registered.v1."""

    type: Literal[EventType.KVIK_KIOSK_REGISTERED]


class KioskOnlineEvent(CloudEvent[KioskOnline]):
    """Envelope of dk.kanalhub.kvik.kiosk.online.v1."""

    type: Literal[EventType.KVIK_KIOSK_ONLINE]


class KioskOfflineEvent(CloudEvent[KioskOffline]):
    """Envelope of dk.kanalhub.kvik.kiosk.offline.v1."""

    type: Literal[EventType.KVIK_KIOSK_OFFLINE]


class HelpRequestedEvent(CloudEvent[HelpRequested]):
    """Envelope of dk.kanalhub.kvik.help.requested.v1."""

    type: Literal[EventType.KVIK_HELP_REQUESTED]


class HelpAnsweredEvent(CloudEvent[HelpAnswered]):
    """Envelope of dk.kanalhub.kvik.help.answered.v1."""

    type: Literal[EventType.KVIK_HELP_ANSWERED]


class VisitPlannedEvent(CloudEvent[VisitPlanned]):
    """Envelope of dk.kanalhub.mobile.visit.planned.v1."""

    type: Literal[EventType.MOBILE_VISIT_PLANNED]


class VisitCancelledEvent(CloudEvent[VisitCancelled]):
    """Envelope of dk.kanalhub.mobile.visit.cancelled.v1."""

    type: Literal[EventType.MOBILE_VISIT_CANCELLED]


class VisitCompletedEvent(CloudEvent[VisitCompleted]):
    """Envelope of dk.kanalhub.mobile.visit.completed.v1."""

    type: Literal[EventType.MOBILE_VISIT_COMPLETED]


class ContactRecordedEvent(CloudEvent[ContactRecorded]):
    """Envelope of dk.kanalhub.mobile.contact.recorded.v1."""

    type: Literal[EventType.MOBILE_CONTACT_RECORDED]


class CountReportedEvent(CloudEvent[CountReported]):
    """Envelope of dk.kanalhub.metrics.count.reported.v1."""

    type: Literal[EventType.METRICS_COUNT_REPORTED]


class DistrictShareChangedEvent(CloudEvent[DistrictShareChanged]):
    """Envelope of dk.kanalhub.metrics.share.changed.v1."""

    type: Literal[EventType.METRICS_DISTRICT_SHARE_CHANGED]


class DeskTicketEndedEvent(CloudEvent[DeskTicketEnded]):
    """Envelope of dk.kanalhub.metrics.ticket.ended.v1."""

    type: Literal[EventType.METRICS_DESK_TICKET_ENDED]


class DeskDayReportedEvent(CloudEvent[DeskDayReported]):
    """Envelope of dk.kanalhub.metrics.deskday.reported.v1."""

    type: Literal[EventType.METRICS_DESK_DAY_REPORTED]


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.REGISTRY_SITE_UPSERTED: SiteUpserted,
    EventType.REGISTRY_SITE_RETIRED: SiteRetired,
    EventType.REGISTRY_ENTRY_UPSERTED: EntryUpserted,
    EventType.REGISTRY_ENTRY_RETIRED: EntryRetired,
    EventType.REGISTRY_SERVICE_UPSERTED: ServiceUpserted,
    EventType.REGISTRY_SERVICE_RETIRED: ServiceRetired,
    EventType.KVIK_SESSION_COMPLETED: SessionCompleted,
    EventType.KVIK_SESSION_ABANDONED: SessionAbandoned,
    EventType.KVIK_SESSION_REFERRED: SessionReferred,
    EventType.KVIK_KIOSK_REGISTERED: KioskRegistered,
    EventType.KVIK_KIOSK_ONLINE: KioskOnline,
    EventType.KVIK_KIOSK_OFFLINE: KioskOffline,
    EventType.KVIK_HELP_REQUESTED: HelpRequested,
    EventType.KVIK_HELP_ANSWERED: HelpAnswered,
    EventType.MOBILE_VISIT_PLANNED: VisitPlanned,
    EventType.MOBILE_VISIT_CANCELLED: VisitCancelled,
    EventType.MOBILE_VISIT_COMPLETED: VisitCompleted,
    EventType.MOBILE_CONTACT_RECORDED: ContactRecorded,
    EventType.METRICS_COUNT_REPORTED: CountReported,
    EventType.METRICS_DISTRICT_SHARE_CHANGED: DistrictShareChanged,
    EventType.METRICS_DESK_TICKET_ENDED: DeskTicketEnded,
    EventType.METRICS_DESK_DAY_REPORTED: DeskDayReported,
}
"""The payload model of each event type."""

ENVELOPES: dict[EventType, type[CloudEvent]] = {
    EventType.REGISTRY_SITE_UPSERTED: SiteUpsertedEvent,
    EventType.REGISTRY_SITE_RETIRED: SiteRetiredEvent,
    EventType.REGISTRY_ENTRY_UPSERTED: EntryUpsertedEvent,
    EventType.REGISTRY_ENTRY_RETIRED: EntryRetiredEvent,
    EventType.REGISTRY_SERVICE_UPSERTED: ServiceUpsertedEvent,
    EventType.REGISTRY_SERVICE_RETIRED: ServiceRetiredEvent,
    EventType.KVIK_SESSION_COMPLETED: SessionCompletedEvent,
    EventType.KVIK_SESSION_ABANDONED: SessionAbandonedEvent,
    EventType.KVIK_SESSION_REFERRED: SessionReferredEvent,
    EventType.KVIK_KIOSK_REGISTERED: KioskRegisteredEvent,
    EventType.KVIK_KIOSK_ONLINE: KioskOnlineEvent,
    EventType.KVIK_KIOSK_OFFLINE: KioskOfflineEvent,
    EventType.KVIK_HELP_REQUESTED: HelpRequestedEvent,
    EventType.KVIK_HELP_ANSWERED: HelpAnsweredEvent,
    EventType.MOBILE_VISIT_PLANNED: VisitPlannedEvent,
    EventType.MOBILE_VISIT_CANCELLED: VisitCancelledEvent,
    EventType.MOBILE_VISIT_COMPLETED: VisitCompletedEvent,
    EventType.MOBILE_CONTACT_RECORDED: ContactRecordedEvent,
    EventType.METRICS_COUNT_REPORTED: CountReportedEvent,
    EventType.METRICS_DISTRICT_SHARE_CHANGED: DistrictShareChangedEvent,
    EventType.METRICS_DESK_TICKET_ENDED: DeskTicketEndedEvent,
    EventType.METRICS_DESK_DAY_REPORTED: DeskDayReportedEvent,
}
"""The envelope model of each event type; each is a member of :data:`AnyEvent`."""

AnyEvent = Annotated[
    SiteUpsertedEvent
    | SiteRetiredEvent
    | EntryUpsertedEvent
    | EntryRetiredEvent
    | ServiceUpsertedEvent
    | ServiceRetiredEvent
    | SessionCompletedEvent
    | SessionAbandonedEvent
    | SessionReferredEvent
    | KioskRegisteredEvent
    | KioskOnlineEvent
    | KioskOfflineEvent
    | HelpRequestedEvent
    | HelpAnsweredEvent
    | VisitPlannedEvent
    | VisitCancelledEvent
    | VisitCompletedEvent
    | ContactRecordedEvent
    | CountReportedEvent
    | DistrictShareChangedEvent
    | DeskTicketEndedEvent
    | DeskDayReportedEvent,
    Field(discriminator="type"),
]
"""Any event of the contract; the ``type`` attribute picks the envelope class."""

_ANY_EVENT: Final[TypeAdapter[AnyEvent]] = TypeAdapter(
    AnyEvent, config=ConfigDict(hide_input_in_errors=True)
)

DecodeFailure = Literal[
    "invalid_json", "personal_data", "unknown_type", "invalid_envelope", "invalid_payload"
]
"""Why a record could not be decoded; also the dead-letter reason."""


class EventDecodeError(ValueError):
    """A record is not a valid event of the contract.

    ``reason`` is short and machine-readable (a metric label and the dead-letter reason); the
    message is for people and never contains the refused values, which may be personal data.
    """

    def __init__(self, reason: DecodeFailure, message: str) -> None:
        super().__init__(message)
        self.reason: DecodeFailure = reason


def new_event(
    event_type: EventType,
    data: PayloadT,
    *,
    source: str,
    subject: str | None = None,
    time: datetime | None = None,
    event_id: UUID | None = None,
) -> CloudEvent[PayloadT]:
    """Build the envelope of an event of ``event_type`` carrying ``data``.

    ``subject`` defaults to the payload's aggregate id, and must equal it when given. ``time``
    defaults to now (UTC) and must be timezone-aware; ``event_id`` defaults to a new uuid4.
    Raises ``TypeError`` when ``data`` is not the payload model of ``event_type`` and
    ``pydantic.ValidationError`` when the envelope is invalid.
    """
    expected = PAYLOADS[event_type]
    if type(data) is not expected:
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    envelope = ENVELOPES[event_type](
        specversion="1.0",
        id=uuid4() if event_id is None else event_id,
        source=source,
        type=event_type,
        time=datetime.now(UTC) if time is None else time,
        subject=data.aggregate_id if subject is None else subject,
        datacontenttype="application/json",
        data=data,
    )
    # The envelope class of event_type is declared with PAYLOADS[event_type] as its data, and
    # data was just checked to be exactly that class.
    return cast("CloudEvent[PayloadT]", envelope)


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event already written as its Kafka record: what an outbox stages and a relay sends.

    Built by :func:`new_encoded_event`; ``value`` and ``headers`` are byte for byte what
    :func:`encode_event` and :func:`kafka_headers` give for the same event.
    """

    id: UUID
    type: EventType
    subject: str
    """The payload's aggregate id: also the Kafka key."""
    time: datetime
    value: bytes
    headers: list[tuple[str, bytes]]


_SOURCE_PATTERN: Final = re.compile(r"^\S+$")


@lru_cache(maxsize=64)
def _check_source(source: str) -> str:
    # A service has one or two sources, so each is checked once, not once per event.
    if not _SOURCE_PATTERN.match(source):
        raise ValueError("source must be a URI-reference without blanks")
    if find_cpr(source) is not None:
        raise ValueError("source looks like a CPR number; events must not carry personal data")
    return source


def new_encoded_event(
    event_type: EventType,
    data: PayloadT,
    *,
    source: str,
    time: datetime | None = None,
    event_id: UUID | None = None,
) -> EncodedEvent:
    """Build and encode the event of ``event_type`` carrying ``data`` in one step, for hot paths.

    The same event, the same bytes and the same checks as :func:`new_event` followed by
    :func:`encode_event` and :func:`kafka_headers`, without validating the envelope through
    pydantic a second time: ``data`` is a payload model that already passed its own validation
    (and with it the personal-data guard), so only what the envelope adds is checked here - the
    payload class of ``event_type`` (``TypeError``), a timezone-aware ``time``, a ``source``
    without blanks and without a CPR-looking value, and a subject (the aggregate id) without
    one (``ValueError``). The subject is always the payload's aggregate id.
    """
    expected = PAYLOADS[event_type]
    if type(data) is not expected:
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    when = datetime.now(UTC) if time is None else time
    if when.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    subject = data.aggregate_id
    if find_cpr(subject) is not None:
        raise ValueError("subject looks like a CPR number; events must not carry personal data")
    # model_construct skips validation only: serialisation is pydantic's own, so the record is
    # exactly the one encode_event writes for the validated envelope.
    envelope = ENVELOPES[event_type].model_construct(
        specversion="1.0",
        id=uuid4() if event_id is None else event_id,
        source=_check_source(source),
        type=event_type,
        time=when,
        subject=subject,
        datacontenttype="application/json",
        data=data,
    )
    return EncodedEvent(
        id=envelope.id,
        type=event_type,
        subject=subject,
        time=when,
        value=encode_event(envelope),
        headers=kafka_headers(envelope),
    )


def encode_event(event: CloudEvent) -> bytes:
    """The record value of ``event``: compact UTF-8 JSON, structured CloudEvents mode."""
    return event.model_dump_json(by_alias=True).encode()


def decode_event(raw: bytes | str) -> CloudEvent:
    """Read a record value back into the envelope class of its type.

    Raises :class:`EventDecodeError` with reason ``invalid_json``, ``personal_data`` (a
    CPR-looking value anywhere, even in a field that is otherwise wrong), ``unknown_type``,
    ``invalid_envelope`` or ``invalid_payload``.
    """
    try:
        return _ANY_EVENT.validate_json(raw)
    except ValidationError as exc:
        error = _decode_error(raw, exc)
        if error.reason == "personal_data":
            # pydantic's own messages may quote the offending value (an unknown type tag is
            # echoed, for one), so nothing of the original error is kept.
            raise error from None
        raise error from exc


def _decode_error(raw: bytes | str, exc: ValidationError) -> EventDecodeError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return EventDecodeError("invalid_json", "the record is not valid JSON")
    if any(error["type"] == "personal_data" for error in errors) or _raw_has_cpr(raw):
        return EventDecodeError(
            "personal_data",
            "the record holds a value that looks like a CPR number; it was not decoded",
        )
    if any(error["type"] == "union_tag_invalid" for error in errors):
        return EventDecodeError("unknown_type", "the event type is not part of the contract")
    if all(_in_data(error) for error in errors):
        return EventDecodeError("invalid_payload", f"invalid data: {_describe(errors)}")
    return EventDecodeError("invalid_envelope", f"invalid envelope: {_describe(errors)}")


def _raw_has_cpr(raw: bytes | str) -> bool:
    # Validation stops before the payload's own guard when another field is wrong, so an
    # invalid record is scanned as plain JSON to flag personal data in any case.
    try:
        document: Any = json.loads(raw)
    except ValueError:
        return False
    return find_cpr(document) is not None


def _in_data(error: ErrorDetails) -> bool:
    # With a discriminated union the location starts with the tag: (type, "data", field, ...).
    return len(error["loc"]) >= 2 and error["loc"][1] == "data"


def _describe(errors: list[ErrorDetails], limit: int = 3) -> str:
    # Locations and pydantic's messages only: with include_input=False no value is echoed.
    parts = [
        f"{'.'.join(str(part) for part in error['loc'][1:]) or '(event)'}: {error['msg']}"
        for error in errors[:limit]
    ]
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def kafka_headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    """The Kafka headers of ``event``, per the CloudEvents Kafka binding in structured mode.

    ``content-type`` marks the value as a structured CloudEvent; the ``ce_`` attributes are
    repeated as headers so that tools can route and filter without parsing the value.
    """
    attributes = event.model_dump(mode="json", include={"time"})
    return [
        ("content-type", STRUCTURED_CONTENT_TYPE.encode()),
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", str(event.id).encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", str(event.type).encode()),
        ("ce_time", str(attributes["time"]).encode()),
        ("ce_subject", event.subject.encode()),
    ]


def topic_for(event_type: EventType) -> Topic:
    """The topic events of ``event_type`` are published on."""
    return EVENT_TOPIC[event_type]
