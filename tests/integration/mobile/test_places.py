"""Registry sites learned from events: districts, coordinates, opening hours; and bad input that
must leave nothing stored and publish nothing."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.contracts import EventType, SiteRetired, new_event
from services.plumbing.pseudonyms import pseudonymous_id
from tests.integration.mobile.conftest import (
    STAFF_A,
    VANLOSE,
    Mobile,
    entry_event,
    future_day,
    local,
    site_event,
    with_site,
)

pytestmark = pytest.mark.integration


async def test_a_visit_at_a_registry_site_takes_its_district_and_kind_from_events(
    mobile: Mobile,
) -> None:
    await with_site(mobile)
    day = future_day(1)
    response = await mobile.plan(
        place=None,
        site_id="site-fisketorvet",
        starts_at=local(day, "10:00"),
        ends_at=local(day, "15:00"),
    )
    assert response.status_code == 201, response.text
    place = response.json()["place"]
    assert place["district"] == "vesterbro-kongens-enghave"
    assert place["kind"] == "mobile_stop"
    assert response.json()["opening_hours"] == "within"
    assert response.json()["override"] is None


async def test_a_newer_site_version_wins_and_an_older_one_is_dropped(mobile: Mobile) -> None:
    await mobile.publish(site_event(version=2))
    await mobile.wait_handled(1)
    await mobile.publish(site_event(version=1))
    await mobile.wait_handled(2)
    site = await mobile.store.site("site-fisketorvet")
    assert site is not None
    assert site.version == 2


async def test_a_retired_site_can_no_longer_be_planned_at(mobile: Mobile) -> None:
    await with_site(mobile)
    await mobile.publish(
        new_event(
            EventType.REGISTRY_SITE_RETIRED,
            SiteRetired(site_id="site-fisketorvet", version=2),
            source="/kanalhub/registry",
        )
    )
    await mobile.wait_handled(3)
    day = future_day(1)
    response = await mobile.plan(
        place=None,
        site_id="site-fisketorvet",
        starts_at=local(day, "10:00"),
        ends_at=local(day, "12:00"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.site_id"


async def test_a_visit_outside_opening_hours_is_refused_without_override(mobile: Mobile) -> None:
    await with_site(mobile)
    day = future_day(1)
    body = {
        "place": None,
        "site_id": "site-fisketorvet",
        "starts_at": local(day, "15:00"),
        "ends_at": local(day, "17:00"),
    }
    overrides = REGISTRY.get_sample_value("kanalhub_mobile_opening_hour_overrides_total") or 0
    refused = await mobile.plan(**body)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/outside-opening-hours")
    assert await mobile.nothing_staged()
    overridden = await mobile.plan(**body, override_opening_hours=True)
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["opening_hours"] == "outside"
    planner = pseudonymous_id(mobile.settings.subject_key, "planner-3f9a")
    assert overridden.json()["override"]["by"] == planner
    after = REGISTRY.get_sample_value("kanalhub_mobile_opening_hour_overrides_total")
    assert after == overrides + 1


async def test_changed_opening_hours_from_a_new_entry_version_apply(mobile: Mobile) -> None:
    await with_site(mobile)
    later = entry_event(opens="10:00", closes="19:00")
    later = later.model_copy(update={"data": later.data.model_copy(update={"version": 2})})
    await mobile.publish(later)
    await mobile.wait_handled(3)
    day = future_day(2)
    response = await mobile.plan(
        place=None,
        site_id="site-fisketorvet",
        starts_at=local(day, "16:00"),
        ends_at=local(day, "18:00"),
    )
    assert response.status_code == 201, response.text


def _day() -> str:
    return future_day(1).isoformat()


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "inverted",
        {"starts_at": f"{_day()}T12:00:00", "ends_at": f"{_day()}T10:00:00"},
        "body.ends_at",
    ),
    (
        "past",
        {"starts_at": "2020-01-07T10:00:00", "ends_at": "2020-01-07T12:00:00"},
        "body.starts_at",
    ),
    (
        "over 12 h",
        {"starts_at": f"{_day()}T06:00:00", "ends_at": f"{_day()}T18:30:00"},
        "body.ends_at",
    ),
    ("unknown site", {"place": None, "site_id": "site-nowhere"}, "body.site_id"),
    ("unknown district", {"place": {**VANLOSE, "district": "hellerup"}}, "body.place.district"),
    ("outside Copenhagen", {"place": {**VANLOSE, "latitude": 56.2}}, "body.place.latitude"),
    ("staff name", {"staff": ["Jens Hansen"]}, "body.staff[0]"),
    ("staff number", {"staff": ["12345"]}, "body.staff[0]"),
    ("CPR-like staff", {"staff": ["staff-0101701234"]}, "body"),
    ("no services", {"services": []}, "body.services"),
    ("two places", {"site_id": "site-fisketorvet"}, "body"),
]


BAD_SERIES: list[tuple[str, dict[str, Any], str]] = [
    ("no end", {"rrule": "FREQ=WEEKLY;BYDAY=MO"}, "body.rrule"),
    ("hourly", {"rrule": "FREQ=HOURLY;COUNT=3"}, "body.rrule"),
    ("not a rule", {"rrule": "FREQ=SOMETIMES;COUNT=2"}, "body.rrule"),
    ("over 12 h", {"duration_minutes": 721}, "body.duration_minutes"),
    ("past", {"first_starts_at": "2020-01-07T10:00:00"}, "occurrences"),
    (
        "exception off the rule",
        {"exceptions": [{"date": "2020-01-01", "cancelled": True}]},
        "body.rrule",
    ),
]


async def test_bad_input_is_a_problem_and_stores_and_publishes_nothing(mobile: Mobile) -> None:
    # One app for every case: starting one per case would cost a second each.
    day = future_day(1)
    for case, change, field in BAD:
        body = {"starts_at": local(day, "10:00"), "ends_at": local(day, "12:00"), **change}
        response = await mobile.plan(**body)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (case, fields)
    for case, change, field in BAD_SERIES:
        body = {
            "place": VANLOSE,
            "services": ["passport"],
            "staff": [STAFF_A],
            "first_starts_at": local(day, "10:00"),
            "duration_minutes": 120,
            "rrule": "FREQ=WEEKLY;COUNT=4",
            **change,
        }
        response = await mobile.post("/series", body)
        assert response.status_code == 422, (case, response.text)
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (case, fields)
    assert await mobile.nothing_staged()
    assert not await mobile.runtime.redis.keys(mobile.settings.key("mobile", "visit", "*"))
    assert not await mobile.runtime.redis.keys(mobile.settings.key("mobile", "series", "*"))
    assert (await mobile.staff_calendar(STAFF_A)).json()["visits"] == []


async def test_an_oversize_body_is_413_and_stores_nothing(mobile: Mobile) -> None:
    day = future_day(1)
    # Over the 1 MiB default limit; refused before anything parses it.
    response = await mobile.plan(
        starts_at=local(day, "10:00"), ends_at=local(day, "12:00"), padding="x" * 1_100_000
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await mobile.nothing_staged()


async def test_planning_needs_the_mobile_plan_role(mobile: Mobile) -> None:
    day = future_day(1)
    body = {
        "place": VANLOSE,
        "services": ["passport"],
        "starts_at": local(day, "10:00"),
        "ends_at": local(day, "12:00"),
    }
    anonymous = await mobile.client.post("/visits", json=body)
    assert anonymous.status_code == 401
    assert await mobile.nothing_staged()
