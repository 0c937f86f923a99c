"""The mobile service's rules: windows, conflicts and travel time, opening hours, recurrence
across DST and holidays, utilisation and suggestions."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contracts.geography import COPENHAGEN
from services.contracts.payloads.registry import EntryUpserted
from services.contracts.reference import ContactMode, District
from services.mobile import domain
from services.mobile.domain import (
    ConflictKind,
    ContactRecord,
    Place,
    PlaceKind,
    Visit,
    VisitStatus,
)

UTC = dt.UTC
RULE = domain.TravelRule(speed_kmh=15.0, buffer=dt.timedelta(minutes=15))
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

VANLOSE = Place(
    place_id="place-vanlose",
    site_id=None,
    name="Vanløse Station",
    district=District.VANLOSE,
    latitude=55.6873,
    longitude=12.4913,
    kind=PlaceKind.TRAIN_STATION,
)
AMAGER = VANLOSE.model_copy(
    update={
        "place_id": "place-amager",
        "name": "Amager Strand Station",
        "district": District.AMAGER_OST,
        "latitude": 55.6587,
        "longitude": 12.6267,
    }
)


def visit(
    visit_id: str,
    start: str,
    end: str,
    place: Place = VANLOSE,
    staff: tuple[str, ...] = ("staff-aaaaaa",),
    kit: tuple[str, ...] = (),
    status: VisitStatus = VisitStatus.PLANNED,
    day: dt.date = dt.date(2026, 12, 1),
) -> Visit:
    """A visit on ``day`` (1 December 2026) between local wall-clock times."""
    return Visit(
        visit_id=visit_id,
        version=1,
        place=place,
        starts_at=dt.datetime.combine(day, dt.time.fromisoformat(start), COPENHAGEN),
        ends_at=dt.datetime.combine(day, dt.time.fromisoformat(end), COPENHAGEN),
        staff=staff,
        kit=kit,
        services=("passport",),
        slots=0,
        drop_ins=True,
        status=status,
    )


# --- windows -------------------------------------------------------------------------------


def test_an_inverted_window_is_a_problem_on_ends_at() -> None:
    start = NOW + dt.timedelta(days=1)
    problems = domain.window_problems(start, start - dt.timedelta(hours=1), NOW)
    assert [p.field for p in problems] == ["body.ends_at"]


def test_a_window_in_the_past_is_a_problem_on_starts_at() -> None:
    start = NOW - dt.timedelta(hours=2)
    problems = domain.window_problems(start, start + dt.timedelta(hours=1), NOW)
    assert [p.field for p in problems] == ["body.starts_at"]


def test_twelve_hours_is_allowed_and_a_minute_more_is_not() -> None:
    start = NOW + dt.timedelta(days=1)
    assert domain.window_problems(start, start + dt.timedelta(hours=12), NOW) == []
    too_long = domain.window_problems(start, start + dt.timedelta(hours=12, minutes=1), NOW)
    assert [p.message for p in too_long] == ["a visit lasts at most 12 hours"]


# --- conflicts -----------------------------------------------------------------------------


def test_overlapping_visits_of_one_staff_member_collide() -> None:
    hit = domain.collision(visit("b", "11:00", "13:00"), visit("a", "10:00", "12:00"), RULE)
    assert hit is not None
    assert (hit.visit_id, hit.kind, hit.resource) == (
        "a",
        ConflictKind.OVERLAP,
        "staff staff-aaaaaa",
    )


def test_visits_without_shared_staff_or_kit_never_collide() -> None:
    other = visit("a", "10:00", "12:00", staff=("staff-bbbbbb",))
    assert domain.collision(visit("b", "10:00", "12:00"), other, RULE) is None


def test_a_shared_kit_collides_even_with_different_staff() -> None:
    a = visit("a", "10:00", "12:00", staff=("staff-bbbbbb",), kit=("kit-1",))
    hit = domain.collision(visit("b", "11:00", "12:00", kit=("kit-1",)), a, RULE)
    assert hit is not None
    assert hit.resource == "kit kit-1"


def test_a_cancelled_visit_blocks_nothing() -> None:
    cancelled = visit("a", "10:00", "12:00", status=VisitStatus.CANCELLED)
    assert domain.collision(visit("b", "10:00", "12:00"), cancelled, RULE) is None


def test_travel_time_is_distance_at_speed_plus_buffer() -> None:
    # About 9.1 km at 15 km/h = 36 min, + 15 min buffer.
    needed = RULE.travel(VANLOSE, AMAGER)
    assert dt.timedelta(minutes=51) < needed < dt.timedelta(minutes=52)
    assert RULE.travel(VANLOSE, VANLOSE) == dt.timedelta(0)


@pytest.mark.parametrize(
    ("start", "collides"), [("12:30", True), ("12:50", True), ("13:00", False)]
)
def test_the_next_visit_must_leave_the_travel_time(start: str, collides: bool) -> None:
    first = visit("a", "10:00", "12:00")
    later = visit("b", start, "15:00", place=AMAGER)
    hit = domain.collision(later, first, RULE)
    assert (hit is not None) is collides
    if hit is not None:
        assert hit.kind is ConflictKind.TRAVEL_TIME
        assert hit.available_minutes == (int(start[3:]) + 60 * (int(start[:2]) - 12))


def test_travel_time_is_checked_before_an_existing_later_visit_as_well() -> None:
    later = visit("a", "13:00", "15:00", place=AMAGER)
    hit = domain.collision(visit("b", "10:00", "12:30"), later, RULE)
    assert hit is not None
    assert hit.kind is ConflictKind.TRAVEL_TIME


def test_visits_being_saved_together_are_checked_against_each_other() -> None:
    series = [visit("a", "10:00", "12:00"), visit("b", "11:00", "13:00")]
    hit = domain.first_conflict(series, [], RULE)
    assert hit is not None
    assert (hit.planned_visit_id, hit.visit_id) == ("b", "a")


def test_an_overlap_is_reported_before_a_travel_time_conflict() -> None:
    existing = [visit("near", "09:00", "09:50", place=AMAGER), visit("over", "11:00", "11:30")]
    hit = domain.first_conflict([visit("new", "10:00", "12:00")], existing, RULE)
    assert hit is not None
    assert (hit.visit_id, hit.kind) == ("over", ConflictKind.OVERLAP)


# --- lifecycle -----------------------------------------------------------------------------


def test_the_lifecycle_allows_only_the_documented_moves() -> None:
    allowed = {(a, b) for a in VisitStatus for b in VisitStatus if domain.can_transition(a, b)}
    assert allowed == {
        (VisitStatus.PLANNED, VisitStatus.CONFIRMED),
        (VisitStatus.PLANNED, VisitStatus.CANCELLED),
        (VisitStatus.CONFIRMED, VisitStatus.IN_PROGRESS),
        (VisitStatus.CONFIRMED, VisitStatus.CANCELLED),
        (VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED),
    }


# --- opening hours -------------------------------------------------------------------------


def _entry(
    weekly: list[dict[str, object]], staff_help: tuple[str, ...] = ("in_person",)
) -> EntryUpserted:
    return EntryUpserted.model_validate(
        {
            "entry_id": "entry-1",
            "version": 1,
            "site_id": "site-1",
            "name": "Borgerservice",
            "kind": "citizen_service_centre",
            "entry_type": "casework_and_decisions",
            "administration": "okf",
            "coverage": "local",
            "district": "valby",
            "services": [],
            "staff_help": list(staff_help),
            "status": "open",
            "opening_hours": {"weekly": weekly},
        }
    )


WEEKDAYS = _entry([{"weekday": d, "opens": "10:00", "closes": "15:00"} for d in range(5)])


def _window(day: dt.date, start: str, end: str) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(day, dt.time.fromisoformat(start), COPENHAGEN),
        dt.datetime.combine(day, dt.time.fromisoformat(end), COPENHAGEN),
    )


def test_a_window_inside_the_hours_is_within() -> None:
    assert (
        domain.opening_check([WEEKDAYS], *_window(dt.date(2026, 12, 1), "10:00", "15:00"))
        == "within"
    )


def test_a_window_running_past_closing_is_outside() -> None:
    assert (
        domain.opening_check([WEEKDAYS], *_window(dt.date(2026, 12, 1), "14:00", "15:01"))
        == "outside"
    )


def test_a_public_holiday_is_outside_for_a_staffed_entry() -> None:
    # Monday 6 April 2026 is Easter Monday.
    assert (
        domain.opening_check([WEEKDAYS], *_window(dt.date(2026, 4, 6), "11:00", "12:00"))
        == "outside"
    )


def test_co_located_entries_cover_each_other_s_hours() -> None:
    afternoons = _entry([{"weekday": 1, "opens": "15:00", "closes": "19:00"}])
    check = domain.opening_check(
        [WEEKDAYS, afternoons], *_window(dt.date(2026, 12, 1), "14:00", "18:00")
    )
    assert check == "within"


def test_a_site_without_hours_is_unknown() -> None:
    assert domain.opening_check([], *_window(dt.date(2026, 12, 1), "10:00", "11:00")) == "unknown"


# --- recurrence ----------------------------------------------------------------------------


def test_a_weekly_rule_keeps_the_wall_clock_across_the_spring_dst_change() -> None:
    # Tuesdays 17 March - 7 April 2026; DST starts Sunday 29 March.
    expansion = domain.expand_rule(
        "FREQ=WEEKLY;BYDAY=TU;COUNT=4", dt.datetime(2026, 3, 17, 10, 0), dt.timedelta(hours=3)
    )
    starts = [o.starts_at for o in expansion.occurrences]
    assert [s.strftime("%H:%M") for s in starts] == ["10:00"] * 4
    assert [s.astimezone(UTC).hour for s in starts] == [9, 9, 8, 8]
    assert [o.ends_at.strftime("%H:%M") for o in expansion.occurrences] == ["13:00"] * 4


def test_danish_public_holidays_are_skipped_with_their_name() -> None:
    # Mondays from 30 March 2026: 6 April is Easter Monday, 25 May Whit Monday.
    expansion = domain.expand_rule(
        "FREQ=WEEKLY;COUNT=9", dt.datetime(2026, 3, 30, 10, 0), dt.timedelta(hours=2)
    )
    skipped = {s.date: s.reason for s in expansion.skipped}
    assert set(skipped) == {dt.date(2026, 4, 6), dt.date(2026, 5, 25)}
    assert all(reason.startswith("public holiday") for reason in skipped.values())
    assert len(expansion.occurrences) == 7


def test_exceptions_cancel_and_move_single_dates() -> None:
    expansion = domain.expand_rule(
        "RRULE:FREQ=WEEKLY;COUNT=3",
        dt.datetime(2026, 12, 1, 10, 0),
        dt.timedelta(hours=2),
        cancelled=[dt.date(2026, 12, 8)],
        moved={dt.date(2026, 12, 15): dt.datetime(2026, 12, 16, 13, 30)},
    )
    assert [(o.date, o.starts_at.strftime("%d %H:%M"), o.moved) for o in expansion.occurrences] == [
        (dt.date(2026, 12, 1), "01 10:00", False),
        (dt.date(2026, 12, 15), "16 13:30", True),
    ]
    assert expansion.occurrences[1].ends_at.strftime("%H:%M") == "15:30"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=WEEKLY;BYDAY=TU", "COUNT or UNTIL"),
        ("FREQ=HOURLY;COUNT=3", "at most daily"),
        ("FREQ=DAILY;COUNT=201", "more than 200"),
        ("FREQ=SOMETIMES;COUNT=2", "not an RFC 5545 RRULE"),
    ],
)
def test_unusable_rules_are_refused_with_a_reason(rule: str, message: str) -> None:
    with pytest.raises(domain.RuleError, match=message):
        domain.expand_rule(rule, dt.datetime(2026, 12, 1, 10, 0), dt.timedelta(hours=1))


def test_an_exception_on_a_date_the_rule_does_not_give_is_refused() -> None:
    with pytest.raises(domain.RuleError, match="not a date of the rule"):
        domain.expand_rule(
            "FREQ=WEEKLY;COUNT=2",
            dt.datetime(2026, 12, 1, 10, 0),
            dt.timedelta(hours=1),
            cancelled=[dt.date(2026, 12, 2)],
        )


# --- utilisation and suggestions -----------------------------------------------------------


def test_utilisation_leaves_cancelled_visits_out() -> None:
    ran = visit("a", "10:00", "12:00", staff=("staff-aaaaaa", "staff-bbbbbb")).model_copy(
        update={"slots": 4}
    )
    cancelled = visit("b", "13:00", "15:00", status=VisitStatus.CANCELLED)
    contact = ContactRecord(
        contact_id="c-1",
        service="passport",
        mode=ContactMode.SELF_SERVICE,
        onboarded_to_digital=True,
        at=NOW,
    )
    usage = domain.utilisation([(ran, [contact] * 6, 2), (cancelled, [contact], 1)])
    assert usage["visits"] == 1
    assert usage["staffed_hours"] == 4.0
    assert usage["contacts_per_staffed_hour"] == 1.5
    assert usage["bookings_used"] == 0.5
    assert usage["drop_ins"] == 6


def test_a_lower_share_ranks_a_district_higher_and_says_why() -> None:
    shares = {
        District.VALBY: domain.Share(0.7, 30, dt.date(2026, 11, 22)),
        District.NORREBRO: domain.Share(0.2, 30, dt.date(2026, 11, 22)),
    }
    ranked = domain.suggest_districts(shares, {}, NOW)
    assert ranked[0].target == "norrebro"
    assert ranked[0].reasons[0].points == 60.0
    assert ranked[0].score == sum(r.points for r in ranked[0].reasons)


def test_a_recent_visit_lowers_a_place_and_the_seed_kinds_raise_it() -> None:
    library = VANLOSE.model_copy(update={"place_id": "lib", "kind": PlaceKind.LIBRARY})
    station = VANLOSE.model_copy(update={"place_id": "station"})
    ranked = domain.suggest_places(
        [library, station], {}, {"station": NOW - dt.timedelta(days=4)}, NOW
    )
    by_id = {s.target: s for s in ranked}
    assert by_id["station"].reasons[1].detail == "last visited 4 days ago"
    # never visited (30) + library (10) beats 4 days ago (2) + train station (20)
    assert [s.target for s in ranked] == ["lib", "station"]


def test_a_site_is_the_kind_its_entries_tell() -> None:
    library = _entry([]).model_copy(update={"kind": "library"})
    assert domain.site_kind([WEEKDAYS, library]) is PlaceKind.LIBRARY
    assert domain.site_kind([WEEKDAYS]) is PlaceKind.CITIZEN_SERVICE
    assert domain.site_kind([]) is PlaceKind.OTHER


def test_a_contact_counts_at_the_open_mobile_stop_of_its_site() -> None:
    def stop(entry_id: str, status: str = "open") -> EntryUpserted:
        update = {"entry_id": entry_id, "kind": "mobile_stop", "status": status}
        return EntryUpserted.model_validate({**WEEKDAYS.model_dump(), **update})

    assert domain.mobile_stop_of([WEEKDAYS, stop("stop-b"), stop("stop-a")]) == "stop-a"
    assert domain.mobile_stop_of([WEEKDAYS, stop("stop-a", "temporarily_closed")]) is None
    assert domain.mobile_stop_of([WEEKDAYS]) is None  # a centre is no mobile stop
