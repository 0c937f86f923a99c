"""A visit that already took place is logged afterwards: stored completed, published as planned
and completed, with contacts recorded at their own (past) times; its window must be over."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from services.contracts import ContactRecorded, EventType, VisitCompleted
from services.contracts.geography import COPENHAGEN
from tests.integration.mobile.conftest import STAFF_A, Mobile, local

pytestmark = pytest.mark.integration


def _past_day(days: int = 30) -> dt.date:
    return dt.datetime.now(COPENHAGEN).date() - dt.timedelta(days=days)


async def _log(mobile: Mobile, day: dt.date, **body: object) -> httpx.Response:
    doc = {
        "visit_id": "held-0001",
        "place": {
            "name": "Vanløse Station",
            "district": "vanlose",
            "latitude": 55.6873,
            "longitude": 12.4913,
            "kind": "train_station",
        },
        "services": ["passport"],
        "staff": [STAFF_A],
        "starts_at": local(day, "10:00"),
        "ends_at": local(day, "13:00"),
    }
    doc.update(body)
    return await mobile.post("/visits/held", doc)


async def test_a_held_visit_is_stored_completed_and_published_with_its_actual_times(
    mobile: Mobile,
) -> None:
    day = _past_day()
    response = await _log(mobile, day)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "completed"
    events = await mobile.events(expect=2)
    assert [e.type for e in events] == [
        EventType.MOBILE_VISIT_PLANNED,
        EventType.MOBILE_VISIT_COMPLETED,
    ]
    completed = events[1].data
    assert isinstance(completed, VisitCompleted)
    assert completed.starts_at.astimezone(COPENHAGEN).date() == day
    assert completed.ends_at - completed.starts_at == dt.timedelta(hours=3)


async def test_a_contact_at_a_held_visit_is_recorded_at_its_own_past_time(mobile: Mobile) -> None:
    day = _past_day()
    await _log(mobile, day)
    recorded = await mobile.post(
        "/visits/held-0001/contacts",
        {
            "contact_id": "held-c1",
            "service": "passport",
            "mode": "assisted",
            "at": local(day, "11:15"),
        },
    )
    assert recorded.status_code == 201, recorded.text
    events = await mobile.events(expect=3)
    (contact,) = [e.data for e in events if e.type is EventType.MOBILE_CONTACT_RECORDED]
    assert isinstance(contact, ContactRecorded)
    assert contact.at.astimezone(COPENHAGEN).date() == day


async def test_the_same_held_visit_logged_twice_is_stored_once(mobile: Mobile) -> None:
    day = _past_day()
    first, again = await _log(mobile, day), await _log(mobile, day)
    assert (first.status_code, again.status_code) == (201, 200)
    events = await mobile.events(expect=2)
    assert len(events) == 2
    assert await mobile.events_after(events) == []


async def test_a_window_that_is_not_over_is_refused_and_nothing_is_published(
    mobile: Mobile,
) -> None:
    today = dt.datetime.now(COPENHAGEN).date()
    response = await _log(mobile, today + dt.timedelta(days=1))
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert "body.ends_at" in fields
    assert await mobile.nothing_staged()


async def test_a_visit_older_than_400_days_is_refused(mobile: Mobile) -> None:
    response = await _log(mobile, _past_day(401))
    assert response.status_code == 422
    assert await mobile.nothing_staged()


async def test_staff_cannot_be_logged_at_two_places_at_once(mobile: Mobile) -> None:
    day = _past_day()
    await _log(mobile, day)
    clash = await _log(
        mobile,
        day,
        visit_id="held-0002",
        starts_at=local(day, "12:00"),
        ends_at=local(day, "14:00"),
    )
    assert clash.status_code == 409
