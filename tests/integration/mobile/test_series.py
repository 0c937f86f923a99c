"""Recurring visits across a DST change and Easter, with exceptions, "this one" and "this and
following" edits, and the ICS feed that shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import icalendar
import pytest
from dateutil.easter import easter

from services.contracts.geography import COPENHAGEN
from tests.integration.mobile.conftest import STAFF_A, STAFF_B, VANLOSE, Mobile, local

pytestmark = pytest.mark.integration


def _spring() -> tuple[dt.date, dt.date]:
    """Next year's Easter Monday, and the Monday five weeks before it.

    Easter Monday falls between 23 March and 26 April, so the first Monday is always in winter
    time (CET) and the eighth weekly visit, two weeks after Easter, always in summer time.
    """
    year = dt.date.today().year + 1
    easter_monday = easter(year) + dt.timedelta(days=1)
    return easter_monday - dt.timedelta(weeks=5), easter_monday


def _series_body(**change: Any) -> dict[str, Any]:
    """Mondays 10-13 at Vanløse Station, eight weeks over Easter; week 2 cancelled, week 3
    moved to Tuesday 14:00."""
    first, _ = _spring()
    return {
        "series_id": "series-vanlose-mondays",
        "place": VANLOSE,
        "services": ["passport"],
        "staff": [STAFF_A],
        "first_starts_at": local(first, "10:00"),
        "duration_minutes": 180,
        "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=8",
        "exceptions": [
            {"date": (first + dt.timedelta(weeks=1)).isoformat(), "cancelled": True},
            {
                "date": (first + dt.timedelta(weeks=2)).isoformat(),
                "moved_to": local(first + dt.timedelta(weeks=2, days=1), "14:00"),
            },
        ],
        **change,
    }


async def _series(mobile: Mobile, **change: Any) -> dict[str, Any]:
    response = await mobile.post("/series", _series_body(**change))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _local_starts(series: dict[str, Any]) -> dict[str, dt.datetime]:
    return {
        v["occurrence_date"]: dt.datetime.fromisoformat(v["starts_at"]) for v in series["visits"]
    }


async def test_a_series_skips_easter_monday_and_honours_exceptions_across_dst(
    mobile: Mobile,
) -> None:
    first, easter_monday = _spring()
    series = await _series(mobile)
    starts = _local_starts(series)
    weeks = [first + dt.timedelta(weeks=n) for n in range(8)]
    assert sorted(starts) == sorted(
        d.isoformat() for d in weeks if d not in {weeks[1], easter_monday}
    )
    skipped = {s["date"]: s["reason"] for s in series["skipped"]}
    assert skipped[weeks[1].isoformat()] == "cancelled"
    assert skipped[easter_monday.isoformat()].startswith("public holiday")
    moved = starts.pop(weeks[2].isoformat())
    assert (moved.date(), moved.hour) == (weeks[2] + dt.timedelta(days=1), 14)
    # Every other visit starts 10:00 on the wall clock: CET (+01:00) before, CEST after.
    assert {s.strftime("%H:%M") for s in starts.values()} == {"10:00"}
    offsets = {s.utcoffset() for s in starts.values()}
    assert offsets == {dt.timedelta(hours=1), dt.timedelta(hours=2)}
    assert starts[weeks[0].isoformat()].astimezone(dt.UTC).hour == 9
    assert starts[weeks[7].isoformat()].astimezone(dt.UTC).hour == 8


async def test_a_retried_series_is_answered_from_the_store_and_published_once(
    mobile: Mobile,
) -> None:
    first_answer = await _series(mobile)
    retry = await mobile.post("/series", _series_body())
    assert retry.status_code == 200, retry.text
    assert retry.json()["visits"] == first_answer["visits"]
    events = await mobile.events(expect=len(first_answer["visits"]))
    assert len(events) == len(first_answer["visits"])
    assert await mobile.events_after(events) == []


async def test_a_series_colliding_with_a_visit_is_refused_whole(mobile: Mobile) -> None:
    first, _ = _spring()
    blocker = await mobile.plan(
        staff=[STAFF_A],
        starts_at=local(first + dt.timedelta(weeks=3), "11:00"),
        ends_at=local(first + dt.timedelta(weeks=3), "12:00"),
    )
    response = await mobile.post(
        "/series",
        {
            "place": VANLOSE,
            "services": ["passport"],
            "staff": [STAFF_A],
            "first_starts_at": local(first, "10:00"),
            "duration_minutes": 180,
            "rrule": "FREQ=WEEKLY;COUNT=6",
        },
    )
    assert response.status_code == 409
    assert blocker.json()["visit_id"] in response.json()["detail"]
    calendar = (await mobile.staff_calendar(STAFF_A, params=_range())).json()
    assert [v["visit_id"] for v in calendar["visits"]] == [blocker.json()["visit_id"]]


async def test_editing_this_one_changes_only_that_visit(mobile: Mobile) -> None:
    first, _ = _spring()
    await _series(mobile)
    week3 = first + dt.timedelta(weeks=3)
    response = await mobile.client.patch(
        f"/series/series-vanlose-mondays/occurrences/{week3.isoformat()}",
        params={"scope": "this"},
        json={"start_time": "12:00"},
        headers=mobile.planner,
    )
    assert response.status_code == 200, response.text
    clocks = {d: s.strftime("%H:%M") for d, s in _local_starts(response.json()).items()}
    assert clocks.pop(week3.isoformat()) == "12:00"
    clocks.pop((first + dt.timedelta(weeks=2)).isoformat())  # the moved one
    assert set(clocks.values()) == {"10:00"}


async def test_moving_one_occurrence_keeps_its_place_in_the_series(mobile: Mobile) -> None:
    first, _ = _spring()
    await _series(mobile)
    week4 = first + dt.timedelta(weeks=4)
    new_start = local(week4 + dt.timedelta(days=2), "09:30")
    response = await mobile.client.patch(
        f"/series/series-vanlose-mondays/occurrences/{week4.isoformat()}",
        params={"scope": "this"},
        json={"moved_to": new_start},
        headers=mobile.planner,
    )
    assert response.status_code == 200, response.text
    moved = _local_starts(response.json())[week4.isoformat()]
    assert (moved.date(), moved.strftime("%H:%M")) == (week4 + dt.timedelta(days=2), "09:30")
    refused = await mobile.client.patch(
        f"/series/series-vanlose-mondays/occurrences/{week4.isoformat()}",
        params={"scope": "following"},
        json={"moved_to": new_start},
        headers=mobile.planner,
    )
    assert refused.status_code == 422


async def test_editing_this_and_following_leaves_earlier_visits_alone(mobile: Mobile) -> None:
    first, _ = _spring()
    await _series(mobile)
    week6 = first + dt.timedelta(weeks=6)
    response = await mobile.client.patch(
        f"/series/series-vanlose-mondays/occurrences/{week6.isoformat()}",
        params={"scope": "following"},
        json={"start_time": "09:00", "staff": [STAFF_A, STAFF_B]},
        headers=mobile.planner,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    later = {
        v["occurrence_date"]: v for v in body["visits"] if v["occurrence_date"] >= week6.isoformat()
    }
    earlier = [v for v in body["visits"] if v["occurrence_date"] < week6.isoformat()]
    assert sorted(later) == [week6.isoformat(), (week6 + dt.timedelta(weeks=1)).isoformat()]
    assert all(
        v["starts_at"][11:16] == "09:00" and v["staff"] == [STAFF_A, STAFF_B]
        for v in later.values()
    )
    assert all(v["staff"] == [STAFF_A] for v in earlier)
    assert body["revisions"][-1]["from_date"] == week6.isoformat()
    b_calendar = (await mobile.staff_calendar(STAFF_B, params=_range())).json()
    assert sorted(v["occurrence_date"] for v in b_calendar["visits"]) == sorted(later)


async def test_cancelling_this_and_following_cancels_the_rest_of_the_series(mobile: Mobile) -> None:
    first, _ = _spring()
    await _series(mobile)
    week4 = first + dt.timedelta(weeks=4)
    response = await mobile.post(
        f"/series/series-vanlose-mondays/occurrences/{week4.isoformat()}/cancel?scope=following",
        {"reason": "low_demand"},
    )
    assert response.status_code == 200, response.text
    status = {v["occurrence_date"]: v["status"] for v in response.json()["visits"]}
    assert {d for d, s in status.items() if s == "cancelled"} == {
        d for d in status if d >= week4.isoformat()
    }
    assert "planned" in status.values()


def _range() -> dict[str, str]:
    first, _ = _spring()
    return {
        "start": (first - dt.timedelta(days=7)).isoformat(),
        "end": (first + dt.timedelta(weeks=10)).isoformat(),
    }


async def test_the_ics_feed_parses_and_keeps_local_times_across_dst(mobile: Mobile) -> None:
    first, _ = _spring()
    series = await _series(mobile)
    week4 = first + dt.timedelta(weeks=4)
    await mobile.post(
        f"/visits/series-vanlose-mondays-{week4:%Y%m%d}/cancel", {"reason": "weather"}
    )
    response = await mobile.staff_calendar(STAFF_A, ics=True, params=_range())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    (timezone,) = calendar.walk("VTIMEZONE")
    assert str(timezone["TZID"]) == "Europe/Copenhagen"
    offsets = {(c.name, c.decoded("TZOFFSETTO")) for c in timezone.subcomponents}
    assert {("STANDARD", dt.timedelta(hours=1)), ("DAYLIGHT", dt.timedelta(hours=2))} <= offsets
    events = {str(e["UID"]).split("@")[0]: e for e in calendar.walk("VEVENT")}
    assert len(events) == len(series["visits"])
    for visit in series["visits"]:
        event = events[visit["visit_id"]]
        start = event.decoded("DTSTART")
        assert start.tzinfo is not None
        assert start == dt.datetime.fromisoformat(visit["starts_at"])
        assert event["DTSTART"].params["TZID"] == "Europe/Copenhagen"
        local_start = start.astimezone(COPENHAGEN)
        if visit["occurrence_date"] != (first + dt.timedelta(weeks=2)).isoformat():
            assert local_start.strftime("%H:%M") == "10:00"
        assert event.decoded("DTEND") - start == dt.timedelta(hours=3)
    assert str(events[f"series-vanlose-mondays-{week4:%Y%m%d}"]["STATUS"]) == "CANCELLED"
