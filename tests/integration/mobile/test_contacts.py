"""Contacts recorded at visits become events counted once; bookings never overbook; utilisation
per visit and place."""

from __future__ import annotations

import asyncio

import pytest

from services.contracts import ContactRecorded, EventType
from tests.integration.mobile.conftest import Mobile, future_day, local, with_site

pytestmark = pytest.mark.integration


async def _running_visit(mobile: Mobile, slots: int = 0, start: bool = True, weeks: int = 2) -> str:
    day = future_day(2, weeks=weeks)
    visit = await mobile.plan(
        starts_at=local(day, "10:00"),
        ends_at=local(day, "12:00"),
        services=["passport", "digital_id"],
        slots=slots,
    )
    visit_id: str = visit.json()["visit_id"]
    if start:
        for step in ("confirm", "start"):
            assert (await mobile.post(f"/visits/{visit_id}/{step}")).status_code == 200
    return visit_id


async def test_a_contact_becomes_one_event_in_the_district_of_the_visit(mobile: Mobile) -> None:
    visit_id = await _running_visit(mobile)
    contact = {
        "contact_id": "contact-0001",
        "service": "digital_id",
        "mode": "assisted",
        "onboarded_to_digital": True,
    }
    first = await mobile.post(f"/visits/{visit_id}/contacts", contact)
    retry = await mobile.post(f"/visits/{visit_id}/contacts", contact)
    assert (first.status_code, retry.status_code) == (201, 200), first.text
    events = await mobile.events(expect=2)
    recorded = [e for e in events if e.type is EventType.MOBILE_CONTACT_RECORDED]
    assert len(recorded) == 1
    assert await mobile.events_after(events) == []
    data = recorded[0].data
    assert isinstance(data, ContactRecorded)
    assert data.contact_id == "contact-0001"
    assert data.district.value == "vanlose"
    assert data.onboarded_to_digital is True
    assert recorded[0].subject == visit_id


async def test_a_contact_at_a_registry_site_names_the_site_and_its_mobile_stop(
    mobile: Mobile,
) -> None:
    await with_site(mobile)  # site-fisketorvet with the open mobile stop entry-site-fisketorvet
    day = future_day(1)
    planned = await mobile.plan(
        place=None,
        site_id="site-fisketorvet",
        starts_at=local(day, "10:00"),
        ends_at=local(day, "15:00"),
    )
    assert planned.status_code == 201, planned.text
    at_site = planned.json()["visit_id"]
    adhoc = await _running_visit(mobile)
    for step in ("confirm", "start"):
        assert (await mobile.post(f"/visits/{at_site}/{step}")).status_code == 200
    for visit_id in (at_site, adhoc):
        contact = {"service": "passport", "mode": "assisted"}
        response = await mobile.post(f"/visits/{visit_id}/contacts", contact)
        assert response.status_code == 201, response.text
    events = await mobile.events(expect=4)  # two visits planned, two contacts, at least
    places = {
        e.data.visit_id: (e.data.site_id, e.data.entry_id)
        for e in events
        if isinstance(e.data, ContactRecorded)
    }
    assert places == {
        at_site: ("site-fisketorvet", "entry-site-fisketorvet"),
        adhoc: (None, None),  # an ad-hoc place is in no registry
    }


async def test_parallel_retries_with_one_idempotency_key_record_one_contact(mobile: Mobile) -> None:
    visit_id = await _running_visit(mobile)
    contact = {"service": "passport", "mode": "self_service"}
    responses = await asyncio.gather(
        *(
            mobile.post(f"/visits/{visit_id}/contacts", contact, **{"Idempotency-Key": "tap-1"})
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert len({r.json()["contact_id"] for r in responses}) == 1
    assert len(await mobile.store.contacts(visit_id)) == 1
    events = await mobile.events(expect=2)
    assert sum(e.type is EventType.MOBILE_CONTACT_RECORDED for e in events) == 1
    assert await mobile.events_after(events) == []


async def test_a_contact_id_reused_for_another_contact_is_409(mobile: Mobile) -> None:
    visit_id = await _running_visit(mobile)
    body = {"contact_id": "contact-0002", "service": "passport", "mode": "assisted"}
    await mobile.post(f"/visits/{visit_id}/contacts", body)
    other = await mobile.post(f"/visits/{visit_id}/contacts", {**body, "mode": "self_service"})
    assert other.status_code == 409


async def test_contacts_on_a_visit_not_under_way_are_refused_and_publish_nothing(
    mobile: Mobile,
) -> None:
    planned = await _running_visit(mobile, start=False)
    confirmed = await _running_visit(mobile, start=False, weeks=3)
    await mobile.post(f"/visits/{confirmed}/confirm")
    for visit_id in (planned, confirmed):
        response = await mobile.post(
            f"/visits/{visit_id}/contacts", {"service": "passport", "mode": "assisted"}
        )
        assert response.status_code == 409
        assert response.json()["type"].endswith("/visit-not-in-progress")
        assert await mobile.store.contacts(visit_id) == []
    events = await mobile.events(expect=2)
    assert all(e.type is not EventType.MOBILE_CONTACT_RECORDED for e in events)
    assert await mobile.events_after(events) == []


async def test_parallel_bookings_never_overbook_and_cancelling_frees_a_slot(
    mobile: Mobile,
) -> None:
    visit_id = await _running_visit(mobile, slots=3, start=False)
    responses = await asyncio.gather(
        *(mobile.post(f"/visits/{visit_id}/bookings", {"booking_ref": f"bk-{i}"}) for i in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 5
    slots = sorted(r.json()["slot"] for r in responses if r.status_code == 201)
    assert slots == [0, 1, 2]
    holder = next(r.json() for r in responses if r.status_code == 201)
    freed = await mobile.client.delete(
        f"/visits/{visit_id}/bookings/{holder['booking_ref']}", headers=mobile.planner
    )
    assert freed.status_code == 204
    late = await mobile.post(f"/visits/{visit_id}/bookings", {"booking_ref": "bk-late"})
    assert late.status_code == 201
    assert late.json()["slot"] == holder["slot"]
    # Two hours in three slots: slot 1 runs 10:40-11:20 local time.
    listed = (await mobile.client.get(f"/visits/{visit_id}/bookings")).json()
    assert [b["slot"] for b in listed] == [0, 1, 2]
    assert listed[1]["starts_at"].endswith("T10:40:00+01:00") or listed[1]["starts_at"].endswith(
        "T10:40:00+02:00"
    )


async def test_cancelling_a_booked_visit_publishes_visit_cancelled(mobile: Mobile) -> None:
    visit_id = await _running_visit(mobile, slots=2, start=False)
    await mobile.post(f"/visits/{visit_id}/bookings", {"booking_ref": "bk-1"})
    cancelled = await mobile.post(f"/visits/{visit_id}/cancel", {"reason": "staff_unavailable"})
    assert cancelled.json()["bookings"] == 1
    events = await mobile.events(expect=2)
    assert events[-1].type is EventType.MOBILE_VISIT_CANCELLED
    late = await mobile.post(f"/visits/{visit_id}/bookings", {"booking_ref": "bk-2"})
    assert late.status_code == 409


async def test_utilisation_counts_contacts_per_staffed_hour_bookings_and_drop_ins(
    mobile: Mobile,
) -> None:
    visit_id = await _running_visit(mobile, slots=4, start=False)
    await mobile.post(f"/visits/{visit_id}/bookings", {"booking_ref": "bk-1"})
    for step in ("confirm", "start"):
        await mobile.post(f"/visits/{visit_id}/{step}")
    for index, booking in enumerate(["bk-1", None, None]):
        await mobile.post(
            f"/visits/{visit_id}/contacts",
            {
                "service": "passport",
                "mode": "assisted",
                "booking_ref": booking,
                "contact_id": f"c-{index}",
            },
        )
    visit = (await mobile.client.get(f"/visits/{visit_id}")).json()
    await mobile.post(
        f"/visits/{visit_id}/complete",
        {"started_at": visit["starts_at"], "ended_at": visit["ends_at"]},
    )
    usage = (await mobile.client.get(f"/visits/{visit_id}/utilisation")).json()
    # One staff member for two hours: 3 contacts / 2 staffed hours.
    assert usage["contacts_per_staffed_hour"] == 1.5
    assert (usage["bookings"], usage["slots"], usage["bookings_used"]) == (1, 4, 0.25)
    assert (usage["drop_ins"], usage["booked_contacts"]) == (2, 1)
    place_id = visit["place"]["place_id"]
    per_place = (await mobile.client.get(f"/places/{place_id}/utilisation")).json()
    assert (per_place["visits"], per_place["contacts"]) == (1, 3)
