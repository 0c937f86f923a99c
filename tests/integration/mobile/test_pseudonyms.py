"""People are stored by pseudonymous id, and public routes show no staff or actor id
(issue 19, item 2)."""

from __future__ import annotations

import pytest

from services.plumbing.pseudonyms import pseudonymous_id
from tests.integration.mobile.conftest import STAFF_A, Mobile, future_day, local

pytestmark = pytest.mark.integration

PLANNER = "planner-3f9a"  # the subject of the fixture's planner token


async def _planned(mobile: Mobile) -> str:
    day = future_day(1)
    response = await mobile.plan(starts_at=local(day, "10:00"), ends_at=local(day, "13:00"))
    assert response.status_code == 201, response.text
    visit_id: str = response.json()["visit_id"]
    return visit_id


async def test_a_visit_history_stores_the_planner_by_pseudonymous_id(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    stored = await mobile.store.visit(visit_id)
    assert stored is not None
    assert [h.by for h in stored.history] == [pseudonymous_id(mobile.settings.subject_key, PLANNER)]


async def test_the_public_visit_shows_neither_staff_nor_planner(mobile: Mobile) -> None:
    visit_id = await _planned(mobile)
    response = await mobile.client.get(f"/visits/{visit_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "staff" not in body
    assert [h["action"] for h in body["history"]] == ["planned"]
    assert all("by" not in h for h in body["history"])
    actor = pseudonymous_id(mobile.settings.subject_key, PLANNER)
    for leaked in (STAFF_A, PLANNER, actor):
        assert leaked not in response.text


async def test_the_public_district_calendars_show_neither_staff_nor_planner(
    mobile: Mobile,
) -> None:
    visit_id = await _planned(mobile)
    actor = pseudonymous_id(mobile.settings.subject_key, PLANNER)
    for path in ("/calendars/districts/vanlose", "/calendars/districts/vanlose.ics"):
        response = await mobile.client.get(path)
        assert response.status_code == 200, response.text
        assert visit_id in response.text, path
        for leaked in (STAFF_A, PLANNER, actor):
            assert leaked not in response.text, (path, leaked)
