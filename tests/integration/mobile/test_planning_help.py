"""Suggestions learned from the metrics service's share events, and the JSON calendars."""

from __future__ import annotations

from typing import Any

import pytest

from services.contracts.reference import District
from tests.integration.mobile.conftest import (
    AMAGER,
    STAFF_A,
    Mobile,
    future_day,
    local,
    share_event,
    with_site,
)

pytestmark = pytest.mark.integration


async def _suggestions(mobile: Mobile) -> dict[str, Any]:
    response = await mobile.client.get("/suggestions", params={"limit": 50})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_suggestions_change_when_a_district_share_changes(mobile: Mobile) -> None:
    await mobile.publish(share_event(District.VALBY, 0.30), share_event(District.NORREBRO, 0.60))
    await mobile.wait_handled(2)
    before = await _suggestions(mobile)
    assert before["districts"][0]["target"] == "valby"
    reasons = {r["factor"]: r for r in before["districts"][0]["reasons"]}
    assert reasons["digital_share"]["points"] == 50.0
    assert "30 %" in reasons["digital_share"]["detail"]

    await mobile.publish(share_event(District.NORREBRO, 0.10, minute=1))
    await mobile.wait_handled(3)
    after = await _suggestions(mobile)
    assert after["districts"][0]["target"] == "norrebro"
    assert after["districts"][0]["score"] > before["districts"][1]["score"]


async def test_an_older_share_event_does_not_replace_a_newer_one(mobile: Mobile) -> None:
    await mobile.publish(share_event(District.VALBY, 0.20, minute=5))
    await mobile.wait_handled(1)
    await mobile.publish(share_event(District.VALBY, 0.90, minute=0))
    await mobile.wait_handled(2)
    valby = next(d for d in (await _suggestions(mobile))["districts"] if d["target"] == "valby")
    assert "20 %" in valby["reasons"][0]["detail"]


async def test_places_are_ranked_with_their_kind_and_last_visit_as_reasons(
    mobile: Mobile,
) -> None:
    await with_site(mobile)
    await mobile.publish(share_event(District.AMAGER_OST, 0.40))
    await mobile.wait_handled(3)
    day = future_day(1)
    await mobile.plan(place=AMAGER, starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    places = {p["target"]: p for p in (await _suggestions(mobile))["places"]}
    fisketorvet = {r["factor"]: r for r in places["site-fisketorvet"]["reasons"]}
    assert fisketorvet["last_visit"]["detail"] == "never visited"
    assert fisketorvet["place_kind"]["points"] == 10
    amager = next(p for p in places.values() if p["name"] == "Amager Strand Station")
    amager_reasons = {r["factor"]: r for r in amager["reasons"]}
    assert amager_reasons["last_visit"]["points"] == 0  # already planned
    assert amager_reasons["place_kind"]["points"] == 20  # a train station, named by the seeds
    assert amager_reasons["digital_share"]["points"] == 40.0
    assert amager["score"] == sum(r["points"] for r in amager["reasons"])


async def test_calendars_list_visits_per_staff_place_and_district(mobile: Mobile) -> None:
    day = future_day(1)
    visit = (
        await mobile.plan(place=AMAGER, starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    ).json()
    place_id = visit["place"]["place_id"]
    for path, response in (
        ("staff", await mobile.staff_calendar(STAFF_A)),
        ("place", await mobile.client.get(f"/calendars/places/{place_id}")),
        ("district", await mobile.client.get("/calendars/districts/amager-ost")),
    ):
        assert response.status_code == 200, (path, response.text)
        assert [v["visit_id"] for v in response.json()["visits"]] == [visit["visit_id"]]
    other = await mobile.client.get("/calendars/districts/valby")
    assert other.json()["visits"] == []
    unknown = await mobile.client.get("/calendars/districts/hellerup")
    assert unknown.status_code == 422
    not_staff = await mobile.client.get("/calendars/staff/Jens Hansen")
    assert not_staff.status_code == 422
