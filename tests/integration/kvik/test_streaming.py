"""Streamed sessions (start, steps, end), out-of-order arrival and the idle sweeper, against
real Valkey and the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
from uuid import uuid4

import pytest

from services.contracts import EventType, HelpChannel, SessionOutcome
from services.kvik import domain
from tests.integration.kvik.conftest import Kvik

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"


def _at(minutes_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


async def test_a_streamed_session_publishes_one_event_with_its_steps_in_order(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    sid = uuid4()
    start = {"kiosk_id": KIOSK, "service": "passport", "started_at": _at(10)}
    assert (
        await kvik.client.post(f"/sessions/{sid}/start", json=start, headers=kiosk)
    ).status_code == 201
    # Steps out of order and one repeated: they fall into place by seq.
    for seq, code in ((1, "identify"), (0, "choose_service"), (1, "identify"), (2, "form")):
        response = await kvik.client.post(
            f"/sessions/{sid}/steps",
            json={"kiosk_id": KIOSK, "steps": [{"seq": seq, "code": code, "at": _at(9 - seq)}]},
            headers=kiosk,
        )
        assert response.status_code in {200, 201}, response.text
    end = {"kiosk_id": KIOSK, "ended_at": _at(5), "outcome": "completed", "help": "video"}
    first = await kvik.client.post(f"/sessions/{sid}/end", json=end, headers=kiosk)
    again = await kvik.client.post(f"/sessions/{sid}/end", json=end, headers=kiosk)
    assert (first.status_code, again.status_code) == (201, 200)
    events = await kvik.events(expect=2)
    sessions = [e for e in events if e.type is EventType.KVIK_SESSION_COMPLETED]
    assert len(sessions) == 1
    assert await kvik.events_after(events) == []
    data = sessions[0].data.model_dump(mode="json")
    assert (data["steps"], data["help"]) == (["choose_service", "identify", "form"], "video")


async def test_an_end_that_overtakes_its_start_records_the_session_and_the_start_is_absorbed(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    sid = uuid4()
    started = _at(10)
    end = {
        "kiosk_id": KIOSK,
        "ended_at": _at(5),
        "outcome": "abandoned",
        "service": "passport",
        "started_at": started,
    }
    assert (
        await kvik.client.post(f"/sessions/{sid}/end", json=end, headers=kiosk)
    ).status_code == 201
    late_start = await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": KIOSK, "service": "passport", "started_at": started},
        headers=kiosk,
    )
    assert (late_start.status_code, late_start.json()["state"]) == (200, "ended")
    late_step = await kvik.client.post(
        f"/sessions/{sid}/steps",
        json={"kiosk_id": KIOSK, "steps": [{"seq": 0, "code": "form", "at": _at(6)}]},
        headers=kiosk,
    )
    assert late_step.status_code == 409
    assert late_step.json()["type"].endswith("/session-ended")


async def test_an_end_without_a_start_or_its_fields_is_refused(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    before = await kvik.snapshot()
    response = await kvik.client.post(
        f"/sessions/{uuid4()}/end",
        json={"kiosk_id": KIOSK, "ended_at": _at(5), "outcome": "completed"},
        headers=kiosk,
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"body.service", "body.started_at"}
    assert await kvik.snapshot() == before


async def test_a_changed_step_under_a_known_seq_is_409(kvik: Kvik, kiosk: dict[str, str]) -> None:
    sid = uuid4()
    await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": KIOSK, "service": "passport", "started_at": _at(10)},
        headers=kiosk,
    )
    step = {"seq": 0, "code": "identify", "at": _at(9)}
    await kvik.client.post(
        f"/sessions/{sid}/steps", json={"kiosk_id": KIOSK, "steps": [step]}, headers=kiosk
    )
    changed = await kvik.client.post(
        f"/sessions/{sid}/steps",
        json={"kiosk_id": KIOSK, "steps": [{**step, "code": "form"}]},
        headers=kiosk,
    )
    assert changed.status_code == 409


async def test_two_sweepers_abandon_an_idle_session_exactly_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    sid = uuid4()
    await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": KIOSK, "service": "passport", "started_at": _at(3)},
        headers=kiosk,
    )
    await kvik.client.post(
        f"/sessions/{sid}/steps",
        json={"kiosk_id": KIOSK, "steps": [{"seq": 0, "code": "identify", "at": _at(2)}]},
        headers=kiosk,
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=kvik.settings.idle_timeout_seconds + 1)
    abandoned = await asyncio.gather(*(kvik.service.streaming.sweep_once(later) for _ in range(2)))
    assert sorted(abandoned) == [0, 1]
    assert await kvik.service.streaming.sweep_once(later) == 0
    events = await kvik.events(expect=2)
    swept = [e for e in events if e.type is EventType.KVIK_SESSION_ABANDONED]
    assert len(swept) == 1
    assert await kvik.events_after(events) == []
    assert swept[0].data.model_dump(mode="json")["steps"] == ["identify"]
    late_end = await kvik.client.post(
        f"/sessions/{sid}/end",
        json={"kiosk_id": KIOSK, "ended_at": _at(0), "outcome": "completed"},
        headers=kiosk,
    )
    assert late_end.status_code == 409


async def test_the_sweeper_leaves_a_session_with_recent_activity_alone(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    sid = uuid4()
    await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": KIOSK, "service": "passport", "started_at": _at(3)},
        headers=kiosk,
    )
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=kvik.settings.idle_timeout_seconds / 2)
    assert await kvik.service.streaming.sweep_once(soon) == 0
    state = await kvik.service.store.session(str(sid))
    assert state["state"] == "open"


async def test_an_end_built_before_a_late_step_is_refused_by_the_store_and_rebuilt(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    sid = uuid4()
    started = _at(10)
    await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": KIOSK, "service": "passport", "started_at": started},
        headers=kiosk,
    )
    store = kvik.service.store
    seen = await store.session(str(sid))  # what an end being built has read
    await kvik.client.post(
        f"/sessions/{sid}/steps",
        json={"kiosk_id": KIOSK, "steps": [{"seq": 0, "code": "identify", "at": _at(9)}]},
        headers=kiosk,
    )
    stale = await store.end_session(
        session_id=str(sid),
        kiosk_id=KIOSK,
        expected_rev=seen["rev"],
        fingerprint="end:test",
        result="{}",
        service="passport",
        start_fp=seen["start_fp"],
        started_at=dt.datetime.fromisoformat(seen["started_at"]),
        event=domain.session_event(
            domain.Session(
                session_id=str(sid),
                kiosk_id=KIOSK,
                service="passport",
                started_at=dt.datetime.fromisoformat(seen["started_at"]),
                ended_at=dt.datetime.now(dt.UTC),
                steps=(),
                outcome=SessionOutcome.COMPLETED,
                help=HelpChannel.NONE,
            ),
            "kvik-test",
            "amager-vest",
            kvik.settings.source,
        ),
        ttl=60,
    )
    assert stale.status == "retry"
    end = {"kiosk_id": KIOSK, "ended_at": _at(5), "outcome": "completed"}
    response = await kvik.client.post(f"/sessions/{sid}/end", json=end, headers=kiosk)
    assert response.status_code == 201
    events = await kvik.events(expect=2)
    completed = [e for e in events if e.type is EventType.KVIK_SESSION_COMPLETED]
    assert [e.data.model_dump()["steps"] for e in completed] == [("identify",)]
