"""The event contract of kanalhub: the only thing the four services share besides the plumbing.

- Every record on a contract topic is a **CloudEvents 1.0** event in structured JSON mode
  (:class:`CloudEvent`); its ``type`` (:class:`EventType`, written out in full) decides the
  pydantic model of its ``data`` (:data:`PAYLOADS`) and its topic (:data:`EVENT_TOPIC`).
- The envelope's ``subject`` is the aggregate id and the Kafka key, so one aggregate's events
  keep their order on one partition.
- Payloads are closed (unknown fields are refused), immutable, have no free text, and are
  refused if any value looks like a CPR number (:func:`find_cpr`).
- Build events with :func:`new_event`, write them with :func:`encode_event` and
  :func:`kafka_headers` (or all in one step on hot paths: :func:`new_encoded_event`), read
  them with :func:`decode_event`, which raises
  :class:`EventDecodeError` with a machine-readable reason.
- JSON Schemas and an AsyncAPI 3 document are generated from these models into
  ``docs/events`` (``make schemas``); a test fails when the checked-in copies drift.
- The meaning every service must judge alike lives here too, imported from its module:
  :mod:`~services.contracts.opening_hours` (open at an instant, open hours in a period, Danish
  public holidays), :mod:`~services.contracts.geography` (the Copenhagen clock, the box around
  the municipality, distance), :mod:`~services.contracts.target` (the digital target share and
  deadline) and :mod:`~services.contracts.reference` (districts and the other vocabularies).
"""

from services.contracts.envelope import (
    ENVELOPES,
    PAYLOADS,
    AnyEvent,
    CloudEvent,
    DecodeFailure,
    EncodedEvent,
    EventDecodeError,
    decode_event,
    encode_event,
    kafka_headers,
    new_encoded_event,
    new_event,
    topic_for,
)
from services.contracts.guard import find_cpr
from services.contracts.payloads import (
    Address,
    ContactRecorded,
    CountReported,
    DeskDayReported,
    DeskTicket,
    DeskTicketEnded,
    DistrictShareChanged,
    EntryRetired,
    EntryUpserted,
    HelpAnswered,
    HelpRequested,
    KioskOffline,
    KioskOnline,
    KioskRegistered,
    OpeningException,
    OpeningHours,
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
    WeeklyOpening,
)
from services.contracts.reference import (
    CITIZEN_SERVICE_KINDS,
    Administration,
    Channel,
    ContactMode,
    ContactSource,
    Coverage,
    District,
    EntryKind,
    EntryStatus,
    EntryType,
    HelpChannel,
    SessionOutcome,
    TicketOutcome,
)
from services.contracts.topics import Topic
from services.contracts.types import EVENT_TOPIC, EventType

__all__ = [
    "CITIZEN_SERVICE_KINDS",
    "ENVELOPES",
    "EVENT_TOPIC",
    "PAYLOADS",
    "Address",
    "Administration",
    "AnyEvent",
    "Channel",
    "CloudEvent",
    "ContactMode",
    "ContactRecorded",
    "ContactSource",
    "CountReported",
    "Coverage",
    "DecodeFailure",
    "DeskDayReported",
    "DeskTicket",
    "DeskTicketEnded",
    "District",
    "DistrictShareChanged",
    "EncodedEvent",
    "EntryKind",
    "EntryRetired",
    "EntryStatus",
    "EntryType",
    "EntryUpserted",
    "EventDecodeError",
    "EventType",
    "HelpAnswered",
    "HelpChannel",
    "HelpRequested",
    "KioskOffline",
    "KioskOnline",
    "KioskRegistered",
    "OpeningException",
    "OpeningHours",
    "Payload",
    "ServiceRetired",
    "ServiceUpserted",
    "SessionAbandoned",
    "SessionCompleted",
    "SessionOutcome",
    "SessionReferred",
    "SiteRetired",
    "SiteUpserted",
    "TicketOutcome",
    "Topic",
    "VisitCancelled",
    "VisitCompleted",
    "VisitPlanned",
    "WeeklyOpening",
    "decode_event",
    "encode_event",
    "find_cpr",
    "kafka_headers",
    "new_encoded_event",
    "new_event",
    "topic_for",
]
