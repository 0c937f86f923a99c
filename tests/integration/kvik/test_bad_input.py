"""Every kind of bad session input is refused with problem+json, stores nothing and publishes
nothing (issue 5, "Bad input")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.integration.kvik.conftest import Kvik, session_body
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"
NOW = dt.datetime.now(dt.UTC)


def _times(start: dt.timedelta, end: dt.timedelta) -> dict[str, str]:
    return {"started_at": (NOW + start).isoformat(), "ended_at": (NOW + end).isoformat()}


CASES: dict[str, tuple[dict[str, Any], int, str]] = {
    "ended in the future beyond the skew": (
        _times(dt.timedelta(minutes=-5), dt.timedelta(minutes=10)),
        422,
        "body.ended_at",
    ),
    "started in the future beyond the skew": (
        _times(dt.timedelta(minutes=20), dt.timedelta(minutes=30)),
        422,
        "body.started_at",
    ),
    "ended before it started": (
        _times(dt.timedelta(minutes=-5), dt.timedelta(minutes=-10)),
        422,
        "body.ended_at",
    ),
    "longer than four hours": (
        _times(dt.timedelta(hours=-5), dt.timedelta(minutes=-5)),
        422,
        "body.ended_at",
    ),
    "unknown service": ({"service": "no_such_service"}, 422, "body.service"),
    "posted for another kiosk": ({"kiosk_id": "kiosk-someone-else"}, 403, ""),
    "a referral without a channel": ({"outcome": "referred"}, 422, "body.referred_to"),
    "a referral to kvik itself": (
        {"outcome": "referred", "referred_to": "kvik"},
        422,
        "body.referred_to",
    ),
    "a field that is not in the schema": ({"citizen_name": "Hans"}, 422, "body.citizen_name"),
    "a step code that looks like a CPR number": (
        {"steps": ["s_0102031234"]},
        422,
        "body.steps",
    ),
    "a time without an offset": ({"ended_at": "2026-01-01T10:00:00"}, 422, "body.ended_at"),
}


async def test_every_kind_of_bad_session_is_refused_with_nothing_stored(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    # One app for all cases: each case checks its own answer and the untouched state.
    for case, (change, status, field) in CASES.items():
        before = await kvik.snapshot()
        response = await kvik.client.post(
            "/sessions", json=session_body(KIOSK, **change), headers=kiosk
        )
        assert response.status_code == status, f"{case}: {response.text}"
        assert response.headers["content-type"] == "application/problem+json", case
        if field:
            fields = [e["field"] for e in response.json()["errors"]]
            assert any(f.startswith(field) for f in fields), f"{case}: {fields}"
        assert await kvik.snapshot() == before, case


async def test_a_body_over_the_size_limit_is_refused_with_nothing_stored(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    before = await kvik.snapshot()
    batch = {"sessions": [session_body(KIOSK, steps=["step_x"] * 200) for _ in range(45)]}
    response = await kvik.client.post("/sessions/batch", json=batch, headers=kiosk)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await kvik.snapshot() == before


async def test_a_revoked_kiosk_posting_a_batch_is_refused_with_nothing_stored(kvik: Kvik) -> None:
    token = await kvik.register(KIOSK)
    await kvik.client.delete(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    before = await kvik.snapshot()
    response = await kvik.client.post(
        "/sessions/batch", json={"sessions": [session_body(KIOSK)]}, headers=bearer(token)
    )
    assert response.status_code == 401
    assert await kvik.snapshot() == before


async def test_a_retired_service_is_refused(kvik: Kvik, kiosk: dict[str, str]) -> None:
    from services.contracts import EventType, new_event
    from services.contracts.payloads.registry import ServiceRetired

    await kvik.apply(
        new_event(
            EventType.REGISTRY_SERVICE_RETIRED,
            ServiceRetired(code="passport", version=2),
            source="/kanalhub/registry",
        )
    )
    response = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=kiosk)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.service"


async def test_every_bad_item_of_a_batch_is_refused_and_stores_nothing(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    before = await kvik.snapshot()
    items = [session_body(KIOSK, **change) for change, _, _ in CASES.values()]
    response = await kvik.client.post("/sessions/batch", json={"sessions": items}, headers=kiosk)
    assert response.status_code == 207
    assert [item["status"] for item in response.json()["items"]] == [
        status for _, status, _ in CASES.values()
    ]
    assert await kvik.snapshot() == before
