"""The mobile app's OpenAPI document, handler table and settings (services/mobile/app.py,
events.py, settings.py), built without connecting."""

from __future__ import annotations

import pytest

from services.contracts import EventType
from services.mobile.app import create_app
from services.mobile.events import handlers
from services.mobile.settings import MobileSettings
from services.plumbing.settings import HubSettings


def test_the_openapi_document_lists_planning_calendar_and_suggestion_routes() -> None:
    paths = create_app(MobileSettings()).openapi()["paths"]
    assert {
        "/visits",
        "/visits/{visit_id}/confirm",
        "/visits/{visit_id}/contacts",
        "/visits/{visit_id}/bookings",
        "/series",
        "/series/{series_id}/occurrences/{day}",
        "/calendars/staff/{staff_id}.ics",
        "/calendars/districts/{district}",
        "/suggestions",
    } <= set(paths)
    plan = paths["/visits"]["post"]
    assert "application/problem+json" in plan["responses"]["409"]["content"]


def test_the_service_consumes_registry_sites_entries_and_district_shares() -> None:
    assert set(handlers(HubSettings())) == {
        EventType.REGISTRY_SITE_UPSERTED,
        EventType.REGISTRY_SITE_RETIRED,
        EventType.REGISTRY_ENTRY_UPSERTED,
        EventType.REGISTRY_ENTRY_RETIRED,
        EventType.METRICS_DISTRICT_SHARE_CHANGED,
    }


def test_travel_speed_and_buffer_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KANALHUB_MOBILE_TRAVEL_SPEED_KMH", "25")
    monkeypatch.setenv("KANALHUB_MOBILE_TRAVEL_BUFFER_MINUTES", "5")
    settings = MobileSettings()
    assert (settings.travel_speed_kmh, settings.travel_buffer_minutes) == (25.0, 5)
