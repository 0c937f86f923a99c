"""The CPR guard at every kiosk door (issue 19, item 2 for kvik): a CPR-shaped value in any
string a kiosk sends - streamed steps, a start, an end, a heartbeat, a help request - is a 422
naming the field, and nothing is stored and nothing staged."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import uuid4

import pytest

from services.plumbing.pseudonyms import pseudonymous_id
from tests.integration.kvik.conftest import Kvik
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"
SID = str(uuid4())


def _at(minutes_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "a streamed step's code": (
        f"/sessions/{SID}/steps",
        {"kiosk_id": KIOSK, "steps": [{"seq": 1, "code": "s_0102031234", "at": _at(1)}]},
        "body.steps[0].code",
    ),
    "a start's service": (
        f"/sessions/{SID}/start",
        {"kiosk_id": KIOSK, "service": "s_0102031234", "started_at": _at(2)},
        "body.service",
    ),
    "a step list at the end": (
        f"/sessions/{SID}/end",
        {
            "kiosk_id": KIOSK,
            "ended_at": _at(0),
            "outcome": "completed",
            "steps": ["identify", "x_3112991234"],
        },
        "body.steps[1]",
    ),
    "a heartbeat's software version": (
        f"/kiosks/{KIOSK}/heartbeat",
        {"software_version": "2.4.1-0102031234", "state": "ready"},
        "body.software_version",
    ),
    "a help request's kiosk id": (
        "/help",
        {
            "help_request_id": str(uuid4()),
            "kiosk_id": "kiosk-0102031234",
            "session_id": str(uuid4()),
            "channel": "video",
        },
        "body.kiosk_id",
    ),
}


async def test_a_cpr_shaped_value_at_every_kiosk_door_is_a_422_and_stores_nothing(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    # An open streamed session with one step, so a refused step has something to join.
    start = {"kiosk_id": KIOSK, "service": "passport", "started_at": _at(3)}
    assert (
        await kvik.client.post(f"/sessions/{SID}/start", json=start, headers=kiosk)
    ).status_code == 201
    step = {"kiosk_id": KIOSK, "steps": [{"seq": 0, "code": "identify", "at": _at(2)}]}
    assert (
        await kvik.client.post(f"/sessions/{SID}/steps", json=step, headers=kiosk)
    ).status_code == 201
    for case, (path, body, field) in CASES.items():
        before = await kvik.snapshot()
        response = await kvik.client.post(path, json=body, headers=kiosk)
        assert response.status_code == 422, f"{case}: {response.text}"
        assert response.headers["content-type"] == "application/problem+json", case
        errors = response.json()["errors"]
        assert [e["field"] for e in errors] == [field], case
        assert "CPR" in errors[0]["message"], case
        assert "0102031234" not in response.text, case
        assert "3112991234" not in response.text, case
        assert await kvik.snapshot() == before, case
    # The session still ends as the kiosk streamed it, with only its good step.
    end = {"kiosk_id": KIOSK, "ended_at": _at(0), "outcome": "completed"}
    ended = await kvik.client.post(f"/sessions/{SID}/end", json=end, headers=kiosk)
    assert ended.status_code == 201, ended.text


async def test_a_staff_token_whose_subject_looks_like_a_cpr_number_cannot_take_a_request(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = {
        "help_request_id": str(uuid4()),
        "kiosk_id": KIOSK,
        "session_id": str(uuid4()),
        "channel": "phone",
    }
    assert (await kvik.client.post("/help", json=body, headers=kiosk)).status_code == 201
    before = await kvik.snapshot()
    staff = auth(kvik.hub, "kvik:staff", subject="staff-0102031234")
    response = await kvik.client.post(f"/help/{body['help_request_id']}/take", headers=staff)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["token.sub"]
    assert "0102031234" not in response.text
    assert await kvik.snapshot() == before


async def test_a_taken_request_stores_the_staff_member_by_pseudonymous_id(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    body = {
        "help_request_id": str(uuid4()),
        "kiosk_id": KIOSK,
        "session_id": str(uuid4()),
        "channel": "phone",
    }
    assert (await kvik.client.post("/help", json=body, headers=kiosk)).status_code == 201
    staff = auth(kvik.hub, "kvik:staff", subject="jens.hansen@kk.dk")
    taken = await kvik.client.post(f"/help/{body['help_request_id']}/take", headers=staff)
    assert taken.status_code == 200, taken.text
    pseudonym = pseudonymous_id(kvik.settings.hub.subject_key, "jens.hansen@kk.dk")
    assert taken.json()["staff"] == pseudonym
    stored = await kvik.service.store.help_request(body["help_request_id"])
    assert stored["staff"] == pseudonym
    assert not any("jens.hansen" in value for value in stored.values())
