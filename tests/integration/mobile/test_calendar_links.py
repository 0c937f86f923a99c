"""Staff calendars are capability URLs (issue 19, item 2): without their secret key, or with
a wrong or revoked one, the feed answers 404 and shows nothing; planners get the address from
the link route and revoke a leaked one by rotating it."""

from __future__ import annotations

import icalendar
import pytest

from services.mobile.calendar_links import link_key, link_signing_key
from services.mobile.settings import MobileSettings
from services.plumbing.settings import HubSettings
from tests.integration.mobile.conftest import STAFF_A, STAFF_B, Mobile, future_day, local, running

pytestmark = pytest.mark.integration

FEEDS = ("/calendars/staff/{}.ics", "/calendars/staff/{}")


async def _planned(mobile: Mobile) -> str:
    day = future_day(3)
    response = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "12:00"))
    assert response.status_code == 201, response.text
    visit_id: str = response.json()["visit_id"]
    return visit_id


async def _link(mobile: Mobile, staff_id: str = STAFF_A) -> dict[str, str]:
    response = await mobile.client.get(f"/calendars/staff/{staff_id}/link", headers=mobile.planner)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    link: dict[str, str] = response.json()
    return link


async def test_a_staff_feed_without_a_key_is_404_and_shows_nothing(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    for feed in FEEDS:
        response = await mobile.client.get(feed.format(STAFF_A))
        assert response.status_code == 404, (feed, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert visit_id not in response.text
        assert "Vanløse" not in response.text


async def test_a_wrong_key_or_another_staff_members_key_is_404(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    b_key = (await _link(mobile, STAFF_B))["ics_path"].partition("?key=")[2]
    a_key = (await _link(mobile))["ics_path"].partition("?key=")[2]
    for key in ("x" * len(a_key), b_key, a_key[:-1], a_key + "A", "ø", ""):
        for feed in FEEDS:
            response = await mobile.client.get(feed.format(STAFF_A), params={"key": key})
            assert response.status_code == 404, (feed, key, response.text)
            assert visit_id not in response.text


async def test_an_unknown_staff_id_is_answered_like_a_wrong_key(mobile: Mobile) -> None:
    await _planned(mobile)
    known = await mobile.client.get(FEEDS[0].format(STAFF_A), params={"key": "guess"})
    unknown = await mobile.client.get(FEEDS[0].format("staff-nobody1"), params={"key": "guess"})
    assert known.status_code == unknown.status_code == 404
    differing = {"instance", "request_id"}  # the caller's own path, and this request's id
    assert {k: v for k, v in known.json().items() if k not in differing} == {
        k: v for k, v in unknown.json().items() if k not in differing
    }


async def test_the_link_opens_the_feed_with_the_visit(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    link = await _link(mobile)
    assert link["staff_id"] == STAFF_A
    assert link["ics_url"] is None  # no KANALHUB_MOBILE_PUBLIC_URL: never built from Host
    feed = await mobile.client.get(link["ics_path"])
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    assert feed.headers["cache-control"].startswith("private")
    (event,) = icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
    assert str(event["uid"]).startswith(visit_id)
    calendar = await mobile.client.get(link["json_path"])
    assert calendar.status_code == 200, calendar.text
    assert [v["visit_id"] for v in calendar.json()["visits"]] == [visit_id]


async def test_the_key_is_the_hmac_of_the_staff_id_under_a_key_derived_from_the_subject_key(
    mobile: Mobile,
) -> None:
    link = await _link(mobile)
    expected = link_key(link_signing_key(mobile.settings.subject_key), STAFF_A, 0)
    assert link["ics_path"] == f"/calendars/staff/{STAFF_A}.ics?key={expected}"
    other = HubSettings(subject_key="another-subject-key-of-another-municipality-0451")
    assert link_key(link_signing_key(other.subject_key), STAFF_A, 0) != expected


async def test_rotating_revokes_the_old_link_and_the_new_one_works(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    old = await _link(mobile)
    rotated = await mobile.client.post(
        f"/calendars/staff/{STAFF_A}/link/rotate", headers=mobile.planner
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["generation"] == int(old["generation"]) + 1
    assert new["ics_path"] != old["ics_path"]
    assert await _link(mobile) == new
    for path in (old["ics_path"], old["json_path"]):
        response = await mobile.client.get(path)
        assert response.status_code == 404, (path, response.text)
    for path in (new["ics_path"], new["json_path"]):
        response = await mobile.client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert visit_id in response.text


async def test_rotating_one_staff_members_link_leaves_the_others_working(mobile: Mobile) -> None:
    b_link = await _link(mobile, STAFF_B)
    await mobile.client.post(f"/calendars/staff/{STAFF_A}/link/rotate", headers=mobile.planner)
    assert (await mobile.client.get(b_link["ics_path"])).status_code == 200


async def test_the_link_routes_need_a_planner(mobile: Mobile) -> None:
    for method, path in (
        ("GET", f"/calendars/staff/{STAFF_A}/link"),
        ("POST", f"/calendars/staff/{STAFF_A}/link/rotate"),
    ):
        response = await mobile.client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
    assert await mobile.store.calendar_link_generation(STAFF_A) == 0


async def test_the_link_is_built_on_the_configured_public_url(hub_settings: HubSettings) -> None:
    settings = MobileSettings(hub=hub_settings, public_url="https://mobil.example.dk/")
    async with running(settings) as mobile:
        link = await mobile.client.get(
            f"/calendars/staff/{STAFF_A}/link",
            headers={**mobile.planner, "Host": "evil.example.com"},
        )
        body = link.json()
        assert body["ics_url"] == f"https://mobil.example.dk{body['ics_path']}"
        assert "evil" not in link.text
