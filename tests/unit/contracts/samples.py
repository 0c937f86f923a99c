"""One valid, realistic sample of every event type, for tests anywhere in the repository.

Everything is fixed (ids, times), so samples compare equal across calls and encode to the same
bytes. To vary a field, validate a new payload, e.g.
``type(p).model_validate({**p.model_dump(), "service": "passport"})``; ``model_copy(update=...)``
skips validation, and with it the CPR guard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

from services.contracts import (
    Address,
    Administration,
    Channel,
    CloudEvent,
    ContactMode,
    ContactRecorded,
    ContactSource,
    CountReported,
    Coverage,
    DeskDayReported,
    DeskTicket,
    DeskTicketEnded,
    District,
    DistrictShareChanged,
    EntryKind,
    EntryRetired,
    EntryStatus,
    EntryType,
    EntryUpserted,
    EventType,
    HelpAnswered,
    HelpChannel,
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
    TicketOutcome,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
    WeeklyOpening,
    new_event,
)

CPH = timezone(timedelta(hours=1), "CET")
"""Copenhagen winter time, as a fixed offset so the samples need no tz database."""

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=CPH)
"""The moment samples happen around: Monday 15 January 2024, 10:00 in Copenhagen."""

SITE_ID = "site-islands-brygge-37"
ENTRY_ID = "entry-kvik-sundby-bibliotek"
KIOSK_ID = "kiosk-sundby-01"
SESSION_ID = "3f1b2c4d-5e6f-4a0b-8c9d-0e1f2a3b4c5d"
VISIT_ID = "visit-valby-station-2024-01-15"


def _session_fields() -> dict[str, object]:
    return {
        "session_id": SESSION_ID,
        "kiosk_id": KIOSK_ID,
        "entry_id": ENTRY_ID,
        "district": District.AMAGER_VEST,
        "service": "change_of_address",
        "started_at": T0,
        "ended_at": T0 + timedelta(minutes=7),
        "steps": ("choose_service", "log_in", "new_address", "confirm"),
    }


def _kiosk_fields() -> dict[str, object]:
    return {
        "kiosk_id": KIOSK_ID,
        "entry_id": ENTRY_ID,
        "district": District.AMAGER_VEST,
        "at": T0,
    }


def _help_fields() -> dict[str, object]:
    return {
        "help_request_id": "help-7d1e",
        "kiosk_id": KIOSK_ID,
        "entry_id": ENTRY_ID,
        "session_id": SESSION_ID,
        "channel": HelpChannel.VIDEO,
        "requested_at": T0 + timedelta(minutes=2),
    }


def _visit_fields() -> dict[str, object]:
    return {
        "visit_id": VISIT_ID,
        "site_id": None,
        "district": District.VALBY,
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=3),
        "services": ("passport", "health_insurance_card", "digital_signature"),
        "staff": ("staff-a1b2c3d4", "staff-e5f6a7b8"),
    }


def _entry_upserted() -> EntryUpserted:
    return EntryUpserted(
        entry_id=ENTRY_ID,
        version=3,
        site_id=SITE_ID,
        name="Borgerservice KVIK, Sundby Bibliotek",
        kind=EntryKind.KVIK_POINT,
        entry_type=EntryType.CASEWORK_AND_DECISIONS,
        administration=Administration.OKF,
        coverage=Coverage.LOCAL,
        district=District.AMAGER_VEST,
        services=("change_of_address", "passport", "health_insurance_card"),
        staff_help=(HelpChannel.VIDEO, HelpChannel.PHONE),
        status=EntryStatus.OPEN,
        opening_hours=OpeningHours(
            weekly=tuple(
                WeeklyOpening(weekday=day, opens="10:00", closes="17:00") for day in range(5)
            ),
            exceptions=(
                OpeningException(date=date(2024, 12, 24), closed=True),
                OpeningException(
                    date=date(2024, 12, 23), closed=False, opens="10:00", closes="13:00"
                ),
            ),
        ),
    )


_FACTORIES: dict[EventType, Callable[[], Payload]] = {
    EventType.REGISTRY_SITE_UPSERTED: lambda: SiteUpserted(
        site_id=SITE_ID,
        version=1,
        name="Islands Brygge Kulturhus",
        address=Address(street="Islands Brygge 37", postal_code="2300", city="København S"),
        district=District.AMAGER_VEST,
        latitude=55.6631,
        longitude=12.5802,
        owner=Administration.KFF,
    ),
    EventType.REGISTRY_SITE_RETIRED: lambda: SiteRetired(site_id=SITE_ID, version=2),
    EventType.REGISTRY_ENTRY_UPSERTED: _entry_upserted,
    EventType.REGISTRY_ENTRY_RETIRED: lambda: EntryRetired(entry_id=ENTRY_ID, version=4),
    EventType.REGISTRY_SERVICE_UPSERTED: lambda: ServiceUpserted(
        code="change_of_address", version=1, name="Flytning", general_needs=True
    ),
    EventType.REGISTRY_SERVICE_RETIRED: lambda: ServiceRetired(code="change_of_address", version=2),
    EventType.KVIK_SESSION_COMPLETED: lambda: SessionCompleted(
        **_session_fields(), help=HelpChannel.NONE
    ),
    EventType.KVIK_SESSION_ABANDONED: lambda: SessionAbandoned(
        **_session_fields(), help=HelpChannel.NONE
    ),
    EventType.KVIK_SESSION_REFERRED: lambda: SessionReferred(
        **_session_fields(), help=HelpChannel.VIDEO, referred_to=Channel.COUNTER
    ),
    EventType.KVIK_KIOSK_REGISTERED: lambda: KioskRegistered(**_kiosk_fields()),
    EventType.KVIK_KIOSK_ONLINE: lambda: KioskOnline(**_kiosk_fields()),
    EventType.KVIK_KIOSK_OFFLINE: lambda: KioskOffline(**_kiosk_fields()),
    EventType.KVIK_HELP_REQUESTED: lambda: HelpRequested(**_help_fields()),
    EventType.KVIK_HELP_ANSWERED: lambda: HelpAnswered(
        **_help_fields(), answered_at=T0 + timedelta(minutes=3)
    ),
    EventType.MOBILE_VISIT_PLANNED: lambda: VisitPlanned(**_visit_fields()),
    EventType.MOBILE_VISIT_CANCELLED: lambda: VisitCancelled(**_visit_fields()),
    EventType.MOBILE_VISIT_COMPLETED: lambda: VisitCompleted(**_visit_fields()),
    EventType.MOBILE_CONTACT_RECORDED: lambda: ContactRecorded(
        contact_id="contact-0001",
        visit_id=VISIT_ID,
        district=District.VALBY,
        service="digital_signature",
        mode=ContactMode.ASSISTED,
        onboarded_to_digital=True,
        at=T0 + timedelta(minutes=25),
    ),
    EventType.METRICS_COUNT_REPORTED: lambda: CountReported(
        source=ContactSource.DIGITAL_PLATFORM,
        day=date(2024, 1, 15),
        district=District.NORREBRO,
        service="change_of_address",
        channel=Channel.DIGITAL,
        self_service=412,
        assisted=23,
    ),
    EventType.METRICS_DISTRICT_SHARE_CHANGED: lambda: DistrictShareChanged(
        district=District.VALBY,
        window_days=28,
        first_day=date(2024, 1, 1),
        last_day=date(2024, 1, 28),
        self_service=3_120,
        assisted=880,
        share=0.78,
        computed_at=datetime(2024, 1, 28, 21, 0, tzinfo=UTC),
    ),
    EventType.METRICS_DESK_TICKET_ENDED: lambda: DeskTicketEnded(
        entry_id="bsc-norrebro",
        site_id="site-norrebro-hall",
        district=District.NORREBRO,
        ticket_id="q-20240115-0042",
        service="passport",
        desk_id="desk-04",
        staff_id="staff-a1b2c3d4",
        issued_at=datetime(2024, 1, 15, 9, 2, tzinfo=UTC),
        called_at=datetime(2024, 1, 15, 9, 14, tzinfo=UTC),
        served_at=datetime(2024, 1, 15, 9, 15, tzinfo=UTC),
        ended_at=datetime(2024, 1, 15, 9, 23, tzinfo=UTC),
        outcome=TicketOutcome.SERVED,
    ),
    EventType.METRICS_DESK_DAY_REPORTED: lambda: DeskDayReported(
        entry_id="bsc-norrebro",
        site_id="site-norrebro-hall",
        district=District.NORREBRO,
        day=date(2024, 1, 15),
        tickets=(
            DeskTicket(
                ticket_id="q-20240115-0043",
                service="change_of_address",
                desk_id=None,
                staff_id=None,
                issued_at=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
                called_at=None,
                served_at=None,
                ended_at=datetime(2024, 1, 15, 10, 40, tzinfo=UTC),
                outcome=TicketOutcome.NO_SHOW,
            ),
        ),
    ),
}


def sample_payload(event_type: EventType) -> Payload:
    """A valid payload of ``event_type``."""
    return _FACTORIES[event_type]()


def sample_payloads() -> dict[EventType, Payload]:
    """A valid payload of every event type."""
    return {event_type: sample_payload(event_type) for event_type in EventType}


def sample_event_id(event_type: EventType) -> UUID:
    """The fixed event id of the sample of ``event_type``."""
    return uuid5(NAMESPACE_URL, f"https://kanalhub.test/samples/{event_type}")


def sample_event(event_type: EventType) -> CloudEvent:
    """A valid event of ``event_type`` from its service's source, with a fixed id and time."""
    service = event_type.split(".")[2]
    return new_event(
        event_type,
        sample_payload(event_type),
        source=f"/kanalhub/{service}",
        time=T0 + timedelta(hours=1),
        event_id=sample_event_id(event_type),
    )


def sample_events() -> dict[EventType, CloudEvent]:
    """A valid event of every event type."""
    return {event_type: sample_event(event_type) for event_type in EventType}
