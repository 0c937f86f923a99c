"""Planning visits against the real broker and Valkey: double booking, travel time, parallel
plans, the lifecycle and its events."""

from __future__ import annotations

import asyncio

import pytest

from services.contracts import EventType, VisitCompleted, VisitPlanned
from tests.integration.mobile.conftest import (
    AMAGER,
    STAFF_A,
    STAFF_B,
    VANLOSE,
    Mobile,
    future_day,
    local,
)

pytestmark = pytest.mark.integration


async def test_a_plan_is_stored_and_published_as_visit_planned(mobile: Mobile) -> None:
    day = future_day(1)
    response = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "13:00"))
    assert response.status_code == 201, response.text
    visit = response.json()
    assert visit["status"] == "planned"
    assert visit["starts_at"].startswith(f"{day.isoformat()}T10:00:00")
    events = await mobile.events(expect=1)
    assert [e.type for e in events] == [EventType.MOBILE_VISIT_PLANNED]
    assert events[0].subject == visit["visit_id"]
    planned = events[0].data
    assert isinstance(planned, VisitPlanned)
    assert planned.district.value == "vanlose"


async def test_the_same_staff_at_an_overlapping_time_gets_409_naming_the_visit(
    mobile: Mobile,
) -> None:
    day = future_day(2)
    first = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    clash = await mobile.plan(
        place=AMAGER,
        staff=[STAFF_B, STAFF_A],
        starts_at=local(day, "11:30"),
        ends_at=local(day, "14:00"),
    )
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert first.json()["visit_id"] in clash.json()["detail"]
    assert {"field": "conflict.kind", "message": "overlap"} in clash.json()["errors"]


async def test_the_same_kit_cannot_be_at_two_visits_at_once(mobile: Mobile) -> None:
    day = future_day(2)
    await mobile.plan(
        kit=["kit-printer-1"], starts_at=local(day, "10:00"), ends_at=local(day, "12:00")
    )
    clash = await mobile.plan(
        staff=[STAFF_B],
        kit=["kit-printer-1"],
        starts_at=local(day, "11:00"),
        ends_at=local(day, "12:30"),
    )
    assert clash.status_code == 409
    assert "kit kit-printer-1" in clash.json()["detail"]


async def test_too_little_travel_time_between_places_is_a_conflict(mobile: Mobile) -> None:
    # About 9.1 km at 15 km/h is 36 min, plus a 15 min buffer: 52 min are needed.
    day = future_day(3)
    first = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    tight = await mobile.plan(
        place=AMAGER, starts_at=local(day, "12:30"), ends_at=local(day, "14:00")
    )
    assert tight.status_code == 409
    errors = tight.json()["errors"]
    assert {"field": "conflict.kind", "message": "travel_time"} in errors
    assert {"field": "conflict.visit_id", "message": first.json()["visit_id"]} in errors
    roomy = await mobile.plan(
        place=AMAGER, starts_at=local(day, "13:00"), ends_at=local(day, "14:30")
    )
    assert roomy.status_code == 201, roomy.text


async def test_travel_time_counts_before_an_earlier_planned_later_visit_too(
    mobile: Mobile,
) -> None:
    day = future_day(3)
    await mobile.plan(place=AMAGER, starts_at=local(day, "13:00"), ends_at=local(day, "15:00"))
    before = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:30"))
    assert before.status_code == 409
    assert "travel" in before.json()["detail"]


async def test_parallel_conflicting_plans_have_exactly_one_winner(mobile: Mobile) -> None:
    day = future_day(1, weeks=3)
    places = [VANLOSE, AMAGER] * 4
    responses = await asyncio.gather(
        *(
            mobile.plan(
                place=place,
                staff=[STAFF_A, f"staff-other{i:02d}"],
                starts_at=local(day, f"{10 + i % 2}:00"),
                ends_at=local(day, f"{12 + i % 2}:30"),
            )
            for i, place in enumerate(places)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.text for r in responses]
    (winner,) = [r.json()["visit_id"] for r in responses if r.status_code == 201]
    assert all(winner in r.json()["detail"] for r in responses if r.status_code == 409)
    calendar = await mobile.staff_calendar(STAFF_A)
    assert [v["visit_id"] for v in calendar.json()["visits"]] == [winner]
    events = await mobile.events(expect=1)
    assert [e.subject for e in events] == [winner]
    assert await mobile.events_after(events) == []


async def test_a_cancelled_visit_frees_its_staff(mobile: Mobile) -> None:
    day = future_day(2, weeks=3)
    first = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    visit_id = first.json()["visit_id"]
    cancelled = await mobile.post(f"/visits/{visit_id}/cancel", {"reason": "low_demand"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_reason"] == "low_demand"
    again = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    assert again.status_code == 201
    events = await mobile.events(expect=3)
    # One visit's events share a key, so they keep their order; two visits' need not.
    assert [e.type for e in events if e.subject == visit_id] == [
        EventType.MOBILE_VISIT_PLANNED,
        EventType.MOBILE_VISIT_CANCELLED,
    ]
    assert [e.subject for e in events if e.subject != visit_id] == [again.json()["visit_id"]]


async def test_the_lifecycle_runs_in_order_and_completion_is_published(mobile: Mobile) -> None:
    day = future_day(0)
    visit_id = (
        await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    ).json()["visit_id"]
    for step, status in (("confirm", "confirmed"), ("start", "in_progress")):
        response = await mobile.post(f"/visits/{visit_id}/{step}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    done = await mobile.post(f"/visits/{visit_id}/complete")
    assert done.json()["status"] == "completed"
    events = await mobile.events(expect=2)
    assert [e.type for e in events] == [
        EventType.MOBILE_VISIT_PLANNED,
        EventType.MOBILE_VISIT_COMPLETED,
    ]
    completed = events[1].data
    assert isinstance(completed, VisitCompleted)
    assert completed.ends_at > completed.starts_at


INVALID: list[tuple[tuple[str, ...], str]] = [
    ((), "start"),
    ((), "complete"),
    (("confirm",), "confirm"),
    (("confirm", "start"), "cancel"),
    (("confirm", "start", "complete"), "start"),
]


async def test_an_invalid_transition_is_409_and_changes_nothing(mobile: Mobile) -> None:
    # One app for all cases (a second each otherwise); each case has its own visit and day.
    for weeks, (steps, refused) in enumerate(INVALID, start=2):
        day = future_day(0, weeks=weeks)
        planned = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
        visit_id = planned.json()["visit_id"]
        for step in steps:
            taken = await mobile.post(f"/visits/{visit_id}/{step}")
            assert taken.status_code == 200, (steps, step, taken.text)
        before = (await mobile.client.get(f"/visits/{visit_id}")).json()
        body = {"reason": "other"} if refused == "cancel" else None
        response = await mobile.post(f"/visits/{visit_id}/{refused}", body)
        assert response.status_code == 409, (steps, refused)
        assert response.json()["type"].endswith("/invalid-transition")
        assert (await mobile.client.get(f"/visits/{visit_id}")).json() == before


async def test_a_retried_plan_with_the_same_idempotency_key_is_stored_once(mobile: Mobile) -> None:
    day = future_day(4, weeks=3)
    body = {"starts_at": local(day, "10:00"), "ends_at": local(day, "12:00")}
    doc = {"place": VANLOSE, "services": ["passport"], "staff": [STAFF_A], **body}
    first = await mobile.post("/visits", doc, **{"Idempotency-Key": "plan-42"})
    again = await mobile.post("/visits", doc, **{"Idempotency-Key": "plan-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["visit_id"] == again.json()["visit_id"]
    events = await mobile.events(expect=1)
    assert len(events) == 1
    assert await mobile.events_after(events) == []


async def test_editing_a_visit_moves_it_and_checks_conflicts_again(mobile: Mobile) -> None:
    day = future_day(1, weeks=4)
    first = (await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))).json()
    second = (
        await mobile.plan(
            staff=[STAFF_B], starts_at=local(day, "13:00"), ends_at=local(day, "15:00")
        )
    ).json()
    clash = await mobile.client.patch(
        f"/visits/{second['visit_id']}",
        json={"staff": [STAFF_A, STAFF_B], "starts_at": local(day, "11:00")},
        headers=mobile.planner,
    )
    assert clash.status_code == 409
    moved = await mobile.client.patch(
        f"/visits/{second['visit_id']}",
        json={"staff": [STAFF_A, STAFF_B], "starts_at": local(day, "12:00")},
        headers=mobile.planner,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2
    assert first["visit_id"] != moved.json()["visit_id"]


async def test_a_retried_cancel_with_the_same_idempotency_key_publishes_once(
    mobile: Mobile,
) -> None:
    day = future_day(3, weeks=4)
    visit_id = (
        await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    ).json()["visit_id"]
    key = {"Idempotency-Key": "cancel-7"}
    first = await mobile.post(f"/visits/{visit_id}/cancel", {"reason": "weather"}, **key)
    retry = await mobile.post(f"/visits/{visit_id}/cancel", {"reason": "weather"}, **key)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    events = await mobile.events(expect=2)
    assert [e.type for e in events] == [
        EventType.MOBILE_VISIT_PLANNED,
        EventType.MOBILE_VISIT_CANCELLED,
    ]
    without_key = await mobile.post(f"/visits/{visit_id}/cancel", {"reason": "weather"})
    assert without_key.status_code == 409
