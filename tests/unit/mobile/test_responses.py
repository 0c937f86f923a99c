"""The routes' response models (services/mobile/schemas.py) describe the JSON the views build
without changing a byte of it: same keys, same order, same values, absent keys stay absent.

Each case answers a view's JSON through the response model and flags that the real route
declares, in a bare FastAPI app, and compares the bytes with the view rendered directly (what
the routes answered before they had response models)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.contracts.reference import ContactMode, District
from services.mobile import api, domain
from services.mobile.domain import (
    CancelReason,
    ContactRecord,
    HistoryRecord,
    OverrideRecord,
    Series,
    Visit,
    VisitStatus,
)
from services.mobile.schemas import (
    contact_view,
    public_series_view,
    public_visit_view,
    series_view,
    suggestion_view,
    visit_view,
)
from tests.unit.mobile.test_domain import visit

AT = dt.datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=dt.UTC)


def _completed() -> Visit:
    """A cancelled-then-not, overridden, completed series occurrence: every optional field set."""
    base = visit("series-a-20261201", "10:00", "13:00", kit=("kit-1",))
    return base.model_copy(
        update={
            "status": VisitStatus.COMPLETED,
            "version": 4,
            "slots": 6,
            "opening_hours": "outside",
            "override": OverrideRecord(by="actor-1", at=AT),
            "series_id": "series-a",
            "occurrence_date": dt.date(2026, 12, 1),
            "started_at": base.starts_at + dt.timedelta(minutes=5),
            "ended_at": base.ends_at,
            "history": (
                HistoryRecord(at=AT, by="actor-1", action="planned", status=VisitStatus.PLANNED),
                HistoryRecord(
                    at=AT,
                    by="actor-2",
                    action="cancelled",
                    status=VisitStatus.CANCELLED,
                    reason=CancelReason.WEATHER,
                    request="req-0123456789abcdef",
                ),
            ),
        }
    )


def _series() -> Series:
    return Series(
        series_id="series-a",
        version=2,
        rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=3",
        first_starts_at=dt.datetime(2026, 12, 1, 10, 0),
        duration_minutes=180,
        cancelled=(dt.date(2026, 12, 8),),
        moved={dt.date(2026, 12, 15): dt.datetime(2026, 12, 16, 11, 30)},
        occurrences={dt.date(2026, 12, 1): "series-a-20261201"},
        skipped=((dt.date(2026, 12, 22), "public holiday"),),
        revisions=(
            {
                "from_date": "2026-12-01",
                "scope": "following",
                "by": "actor-1",
                "at": AT.isoformat(),
                "changed": ["staff"],
            },
        ),
    )


def _contact() -> ContactRecord:
    return ContactRecord(
        contact_id="contact-1",
        service="passport",
        mode=ContactMode.SELF_SERVICE,
        onboarded_to_digital=True,
        at=AT,
    )


def _suggestions() -> dict[str, Any]:
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    shares = {District.INDRE_BY: domain.Share(0.61, 28, dt.date(2026, 11, 30))}
    return {
        "computed_at": domain.local_iso(now),
        "districts": [suggestion_view(s) for s in domain.suggest_districts(shares, {}, now)],
        "places": [],
    }


def _usage(held: list[Visit]) -> dict[str, object]:
    return domain.utilisation([(v, [_contact()], 2) for v in held])


CASES: dict[str, tuple[str, str, Any]] = {
    "planned visit": ("/visits", "POST", visit_view(visit("v-1", "10:00", "12:00"))),
    "completed visit": ("/visits/{visit_id}/complete", "POST", visit_view(_completed())),
    "cancelled visit with bookings": (
        "/visits/{visit_id}/cancel",
        "POST",
        visit_view(_completed(), 3),
    ),
    "public visit": ("/visits/{visit_id}", "GET", public_visit_view(_completed(), 0)),
    "series": ("/series", "POST", series_view(_series(), [_completed()])),
    "public series": ("/series/{series_id}", "GET", public_series_view(_series(), [_completed()])),
    "recorded contact": (
        "/visits/{visit_id}/contacts",
        "POST",
        contact_view(_contact(), "v-1"),
    ),
    "contact list": ("/visits/{visit_id}/contacts", "GET", [contact_view(_contact())]),
    "utilisation of nothing": (
        "/visits/{visit_id}/utilisation",
        "GET",
        {"visit_id": "v-1", **_usage([])},
    ),
    "utilisation": (
        "/places/{place_id}/utilisation",
        "GET",
        {"place_id": "p-1", **_usage([_completed()])},
    ),
    "calendar": (
        "/calendars/places/{place_id}",
        "GET",
        {
            "kind": "place",
            "target": "p-1",
            "timezone": "Europe/Copenhagen",
            "visits": [public_visit_view(_completed())],
        },
    ),
    "suggestions": ("/suggestions", "GET", _suggestions()),
}


def _declared(path: str, method: str) -> APIRoute:
    (route,) = [
        r
        for r in api.router.routes
        if isinstance(r, APIRoute) and r.path == path and method in r.methods
    ]
    return route


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_response_model_answers_the_view_byte_for_byte(name: str) -> None:
    path, method, body = CASES[name]
    route = _declared(path, method)
    assert route.response_model is not None
    app = FastAPI()

    @app.get(
        "/answer",
        response_model=route.response_model,
        response_model_exclude_unset=route.response_model_exclude_unset,
    )
    async def answer() -> Any:
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answered = await client.get("/answer")
    assert answered.status_code == 200, answered.text
    rendered = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert answered.content == rendered.encode()


def test_every_json_route_declares_a_response_model() -> None:
    untyped = [
        f"{sorted(r.methods)[0]} {r.path}"
        for r in api.router.routes
        if isinstance(r, APIRoute)
        and r.response_model is None
        and r.status_code != 204
        # The feeds answer text/calendar, not JSON.
        and not r.path.endswith(".ics")
    ]
    assert untyped == []
