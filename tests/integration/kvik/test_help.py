"""The staff help queue against real Valkey and the real broker: request, live queue, take,
measured wait, escalation to the contact centre."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from uuid import uuid4

import pytest

from services.contracts import EventType
from tests.integration.kvik.conftest import Kvik

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"
TEAM = "team-amager-vest"


def _help(channel: str = "video") -> dict[str, str]:
    return {
        "help_request_id": str(uuid4()),
        "kiosk_id": KIOSK,
        "session_id": str(uuid4()),
        "channel": channel,
    }


async def test_a_help_request_waits_in_the_entry_teams_queue_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = _help()
    first = await kvik.client.post("/help", json=body, headers=kiosk)
    again = await kvik.client.post("/help", json=body, headers=kiosk)
    assert (first.status_code, again.status_code) == (201, 200)
    queue = await kvik.client.get(f"/help/queues/{TEAM}", headers=kvik.staff)
    assert [item["help_request_id"] for item in queue.json()] == [body["help_request_id"]]


async def test_taking_a_request_measures_the_wait_and_publishes_it_answered(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = _help("phone")
    await kvik.client.post("/help", json=body, headers=kiosk)
    await asyncio.sleep(0.2)
    taken = await kvik.client.post(f"/help/{body['help_request_id']}/take", headers=kvik.staff)
    assert taken.status_code == 200, taken.text
    assert taken.json()["state"] == "answered"
    assert 0.2 <= taken.json()["wait_seconds"] < 5
    second = await kvik.client.post(f"/help/{body['help_request_id']}/take", headers=kvik.staff)
    assert second.status_code == 409
    assert (await kvik.client.get(f"/help/queues/{TEAM}", headers=kvik.staff)).json() == []
    events = await kvik.events(expect=3)
    answered = [e for e in events if e.type is EventType.KVIK_HELP_ANSWERED]
    assert len(answered) == 1
    assert await kvik.events_after(events) == []
    data = answered[0].data
    wait = (data.answered_at - data.requested_at).total_seconds()  # type: ignore[attr-defined]
    assert wait == pytest.approx(taken.json()["wait_seconds"], abs=0.002)


async def test_a_request_not_taken_in_time_moves_to_the_contact_centre(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = _help()
    await kvik.client.post("/help", json=body, headers=kiosk)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    assert await kvik.service.help.escalate_once(soon) == 0
    late = dt.datetime.now(dt.UTC) + dt.timedelta(
        seconds=kvik.settings.help_escalate_after_seconds + 1
    )
    moved = await asyncio.gather(*(kvik.service.help.escalate_once(late) for _ in range(2)))
    assert sum(moved) == 1
    assert (await kvik.client.get(f"/help/queues/{TEAM}", headers=kvik.staff)).json() == []
    centre = (await kvik.client.get("/help/queues/contact-centre", headers=kvik.staff)).json()
    assert [(i["help_request_id"], i["escalated"]) for i in centre] == [
        (body["help_request_id"], True)
    ]
    taken = await kvik.client.post(f"/help/{body['help_request_id']}/take", headers=kvik.staff)
    assert taken.json()["queue"] == "contact-centre"


async def test_staff_see_the_live_queue_as_server_sent_events(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = _help()
    await kvik.client.post("/help", json=body, headers=kiosk)
    async with kvik.client.stream(
        "GET", f"/help/queues/{TEAM}/stream", params={"limit": 1}, headers=kvik.staff
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    data = next(line[6:] for line in text.splitlines() if line.startswith("data: "))
    assert [item["help_request_id"] for item in json.loads(data)] == [body["help_request_id"]]


async def test_the_help_queue_needs_a_staff_role(kvik: Kvik, kiosk: dict[str, str]) -> None:
    response = await kvik.client.get(f"/help/queues/{TEAM}", headers=kiosk)
    assert response.status_code == 401
