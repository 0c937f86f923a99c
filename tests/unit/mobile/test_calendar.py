"""The iCalendar feed: parses with icalendar, local times and VTIMEZONE right across DST."""

from __future__ import annotations

import datetime as dt

import icalendar

from services.contracts.geography import COPENHAGEN
from services.mobile.calendar import ics_feed
from services.mobile.domain import Visit, VisitStatus
from tests.unit.mobile.test_domain import visit

NOW = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)


def _on(day: dt.date, status: VisitStatus = VisitStatus.PLANNED) -> Visit:
    return visit(f"visit-{day:%m%d}", "10:00", "13:00", status=status, day=day)


def test_events_keep_their_local_time_on_both_sides_of_the_autumn_change() -> None:
    # DST ends on Sunday 25 October 2026.
    visits = [_on(dt.date(2026, 10, 20)), _on(dt.date(2026, 10, 27))]
    feed = icalendar.Calendar.from_ical(ics_feed("test", visits, NOW))
    starts = [e.decoded("DTSTART") for e in feed.walk("VEVENT")]
    assert [s.astimezone(COPENHAGEN).strftime("%H:%M") for s in starts] == ["10:00", "10:00"]
    assert [s.astimezone(dt.UTC).hour for s in starts] == [8, 9]
    (timezone,) = feed.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "Europe/Copenhagen"


def test_a_cancelled_visit_is_published_as_cancelled_and_a_planned_one_as_tentative() -> None:
    visits = [_on(dt.date(2026, 10, 20)), _on(dt.date(2026, 10, 27), VisitStatus.CANCELLED)]
    feed = icalendar.Calendar.from_ical(ics_feed("test", visits, NOW))
    assert [str(e["STATUS"]) for e in feed.walk("VEVENT")] == ["TENTATIVE", "CANCELLED"]


def test_an_empty_feed_is_still_a_valid_calendar() -> None:
    feed = icalendar.Calendar.from_ical(ics_feed("empty", [], NOW))
    assert str(feed["X-WR-CALNAME"]) == "empty"
    assert feed.walk("VEVENT") == []
