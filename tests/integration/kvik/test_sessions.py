"""Sessions posted in one call, against the real broker and Valkey: idempotent, one event each,
counted on the day they happened."""

from __future__ import annotations

import asyncio
import datetime as dt
from uuid import uuid4

import pytest

from services.contracts import EventType
from tests.integration.kvik.conftest import ENTRY_ID, Kvik, entry_event, session_body
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"


async def test_a_session_is_recorded_with_its_district_and_its_event_arrives_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = session_body(KIOSK)
    first = await kvik.client.post("/sessions", json=body, headers=kiosk)
    again = await kvik.client.post("/sessions", json=body, headers=kiosk)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["district"] == "amager-vest"
    events = await kvik.events(expect=2)  # the kiosk's registration and the session
    sessions = [e for e in events if e.type is EventType.KVIK_SESSION_COMPLETED]
    assert len({e.id for e in sessions}) == 1
    assert await kvik.events_after(events) == []
    assert str(sessions[0].id) == first.json()["event_id"]
    assert sessions[0].data.model_dump(mode="json")["entry_id"] == ENTRY_ID


async def test_the_event_is_timed_when_the_session_ended_not_when_it_arrived(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    body = session_body(
        KIOSK,
        started_at=(ended - dt.timedelta(minutes=8)).isoformat(),
        ended_at=ended.isoformat(),
    )
    assert (await kvik.client.post("/sessions", json=body, headers=kiosk)).status_code == 201
    events = await kvik.events(expect=2)
    session = next(e for e in events if e.type is EventType.KVIK_SESSION_COMPLETED)
    assert session.time == ended


async def test_a_different_body_under_a_recorded_id_is_409_and_changes_nothing(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = session_body(KIOSK)
    assert (await kvik.client.post("/sessions", json=body, headers=kiosk)).status_code == 201
    before = await kvik.snapshot()
    changed = {**body, "outcome": "abandoned"}
    response = await kvik.client.post("/sessions", json=changed, headers=kiosk)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert await kvik.snapshot() == before


async def test_concurrent_retries_of_one_session_record_it_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = session_body(KIOSK)
    responses = await asyncio.gather(
        *(kvik.client.post("/sessions", json=body, headers=kiosk) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["event_id"] for r in responses}) == 1
    events = await kvik.events(expect=2)
    assert sum(e.type is EventType.KVIK_SESSION_COMPLETED for e in events) == 1
    assert await kvik.events_after(events) == []


@pytest.mark.parametrize(
    ("outcome", "extra", "event_type"),
    [
        ("abandoned", {}, EventType.KVIK_SESSION_ABANDONED),
        ("referred", {"referred_to": "counter"}, EventType.KVIK_SESSION_REFERRED),
    ],
)
async def test_each_outcome_publishes_its_own_event(
    kvik: Kvik, kiosk: dict[str, str], outcome: str, extra: dict[str, str], event_type: EventType
) -> None:
    body = session_body(KIOSK, outcome=outcome, **extra)
    assert (await kvik.client.post("/sessions", json=body, headers=kiosk)).status_code == 201
    events = await kvik.events(expect=2)
    assert [e.type for e in events if e.type is not EventType.KVIK_KIOSK_REGISTERED] == [event_type]


async def test_a_batch_answers_per_item_and_a_retried_batch_counts_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    good = [session_body(KIOSK) for _ in range(5)]
    bad = session_body(KIOSK, service="no_such_service")
    batch = {"sessions": [*good[:2], bad, *good[2:]]}
    first = await kvik.client.post("/sessions/batch", json=batch, headers=kiosk)
    assert first.status_code == 207
    assert [item["status"] for item in first.json()["items"]] == [201, 201, 422, 201, 201, 201]
    assert first.json()["items"][2]["problem"]["errors"][0]["field"] == ("body.sessions[2].service")
    again = await kvik.client.post("/sessions/batch", json=batch, headers=kiosk)
    assert [item["status"] for item in again.json()["items"]] == [200, 200, 422, 200, 200, 200]
    events = await kvik.events(expect=6)
    recorded = [e for e in events if e.type is EventType.KVIK_SESSION_COMPLETED]
    assert sorted(e.data.model_dump()["session_id"] for e in recorded) == sorted(
        item["session_id"] for item in good
    )
    assert await kvik.events_after(events) == []


async def test_one_session_twice_in_a_batch_is_recorded_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = session_body(KIOSK)
    response = await kvik.client.post(
        "/sessions/batch", json={"sessions": [body, body]}, headers=kiosk
    )
    assert [item["status"] for item in response.json()["items"]] == [201, 200]


async def test_a_batch_over_the_item_limit_is_refused_whole(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    before = await kvik.snapshot()
    batch = {"sessions": [session_body(KIOSK) for _ in range(kvik.settings.max_batch_items + 1)]}
    response = await kvik.client.post("/sessions/batch", json=batch, headers=kiosk)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/batch-too-large")
    assert await kvik.snapshot() == before


async def test_a_batch_item_for_another_kiosk_is_refused_on_its_own(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    batch = {"sessions": [session_body("kiosk-someone-else"), session_body(KIOSK)]}
    response = await kvik.client.post("/sessions/batch", json=batch, headers=kiosk)
    assert [item["status"] for item in response.json()["items"]] == [403, 201]
    assert response.json()["failed"] == 1


async def test_a_session_id_must_be_a_uuid(kvik: Kvik, kiosk: dict[str, str]) -> None:
    body = session_body(KIOSK, session_id=f"session-{uuid4().hex[:6]}")
    response = await kvik.client.post("/sessions", json=body, headers=kiosk)
    assert response.status_code == 422


async def test_a_session_after_its_entry_moved_district_carries_the_new_district(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    first = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=kiosk)
    await kvik.apply(entry_event(version=2, district="valby"))
    second = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=kiosk)
    assert (first.json()["district"], second.json()["district"]) == ("amager-vest", "valby")


async def test_a_token_posting_for_a_kiosk_that_posted_before_is_refused(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    other = bearer(await kvik.register("kiosk-test-02"))
    assert (
        await kvik.client.post("/sessions", json=session_body(KIOSK), headers=kiosk)
    ).status_code == 201
    before = await kvik.snapshot()
    response = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=other)
    assert response.status_code == 403
    assert await kvik.snapshot() == before
