"""Kiosk registration, tokens, heartbeats, liveness and the rate limit, against real Valkey and
the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from services.contracts import EventType
from services.plumbing.auth import hash_device_token
from services.plumbing.pseudonyms import pseudonymous_id
from services.plumbing.settings import HubSettings
from tests.integration.kvik.conftest import (
    ADMIN,
    Kvik,
    entry_event,
    kvik_settings,
    running,
    session_body,
)
from tests.support.tokens import auth, bearer

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"
HEARTBEAT = {"software_version": "2.4.1", "state": "ready"}


async def test_registration_shows_the_token_once_stores_only_its_hash_and_publishes(
    kvik: Kvik,
) -> None:
    token = await kvik.register(KIOSK)
    stored = await kvik.runtime.redis.hgetall(kvik.hub.key("kvik", "kiosk", KIOSK))
    assert stored[b"token_hash"].decode() == hash_device_token(token)
    values = b"".join(
        [
            (await kvik.runtime.redis.dump(key)) or b""
            for key in await kvik.runtime.redis.keys(kvik.hub.key("kvik", "*"))
        ]
    )
    assert token.encode() not in values
    view = await kvik.client.get(f"/kiosks/{KIOSK}", headers=kvik.admin)
    assert "token" not in view.json()
    assert view.json()["status"] == "active"
    events = await kvik.events(expect=1)
    assert [(e.type, e.subject) for e in events] == [(EventType.KVIK_KIOSK_REGISTERED, KIOSK)]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/kiosks"),
        ("GET", f"/kiosks/{KIOSK}"),
        ("POST", f"/kiosks/{KIOSK}/token"),
        ("DELETE", f"/kiosks/{KIOSK}/token"),
        ("POST", f"/kiosks/{KIOSK}/reinstate"),
        ("GET", f"/kiosks/{KIOSK}/audit"),
    ],
)
async def test_a_registry_writer_cannot_touch_a_kiosk_or_its_token(
    kvik: Kvik, method: str, path: str
) -> None:
    token = await kvik.register(KIOSK)
    before = await kvik.snapshot()
    response = await kvik.client.request(
        method,
        path,
        json={"entry_id": "kvik-test"},
        headers=auth(kvik.hub, "registry:write", subject=ADMIN),
    )
    assert response.status_code == 403
    assert "kvk_" not in response.text
    assert await kvik.snapshot() == before
    still = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(token))
    assert still.status_code == 201


async def test_registration_needs_an_admin_role(kvik: Kvik) -> None:
    response = await kvik.client.post(
        "/kiosks",
        json={"entry_id": "kvik-test"},
        headers=auth(kvik.hub, "metrics:read", subject=ADMIN),
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "entry",
    [
        None,
        entry_event("library-test", kind="library"),
        entry_event("kvik-closed", status="temporarily_closed"),
    ],
    ids=["unknown entry", "not a KVIK point", "not open"],
)
async def test_registration_at_anything_but_an_open_kvik_point_is_refused(
    kvik: Kvik, entry: object
) -> None:
    entry_id = "kvik-nowhere"
    if entry is not None:
        await kvik.apply(entry)  # type: ignore[arg-type]
        entry_id = entry.subject  # type: ignore[attr-defined]
    before = await kvik.snapshot()
    response = await kvik.client.post(
        "/kiosks", json={"kiosk_id": KIOSK, "entry_id": entry_id}, headers=kvik.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.entry_id"
    assert await kvik.snapshot() == before


async def test_a_kiosk_id_is_registered_once(kvik: Kvik) -> None:
    await kvik.register(KIOSK)
    response = await kvik.client.post(
        "/kiosks", json={"kiosk_id": KIOSK, "entry_id": "kvik-test"}, headers=kvik.admin
    )
    assert response.status_code == 409


async def test_a_revoked_token_is_refused_at_once_and_nothing_is_stored(kvik: Kvik) -> None:
    token = await kvik.register(KIOSK)
    assert (
        await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(token))
    ).status_code == 201
    revoked = await kvik.client.delete(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    assert revoked.json()["status"] == "revoked"
    before = await kvik.snapshot()
    response = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(token))
    assert response.status_code == 401
    assert await kvik.snapshot() == before


async def test_rotation_retires_the_old_token_and_the_new_one_works(kvik: Kvik) -> None:
    old = await kvik.register(KIOSK)
    rotated = await kvik.client.post(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    new = rotated.json()["token"]
    assert new != old
    refused = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(old))
    accepted = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(new))
    assert (refused.status_code, accepted.status_code) == (401, 201)


async def test_rotating_a_revoked_kiosk_is_refused_and_it_stays_revoked(kvik: Kvik) -> None:
    await kvik.register(KIOSK)
    await kvik.client.delete(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    before = await kvik.snapshot()
    response = await kvik.client.post(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    assert response.status_code == 409
    assert "kvk_" not in response.text
    assert await kvik.snapshot() == before
    view = await kvik.client.get(f"/kiosks/{KIOSK}", headers=kvik.admin)
    assert view.json()["status"] == "revoked"


async def test_reinstating_a_revoked_kiosk_issues_a_working_token_and_is_audited(
    kvik: Kvik,
) -> None:
    old = await kvik.register(KIOSK)
    await kvik.client.delete(f"/kiosks/{KIOSK}/token", headers=kvik.admin)
    reinstated = await kvik.client.post(f"/kiosks/{KIOSK}/reinstate", headers=kvik.admin)
    assert reinstated.status_code == 200, reinstated.text
    new = reinstated.json()["token"]
    refused = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(old))
    accepted = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(new))
    assert (refused.status_code, accepted.status_code) == (401, 201)
    audit = (await kvik.client.get(f"/kiosks/{KIOSK}/audit", headers=kvik.admin)).json()
    # The administrator appears by pseudonymous id (issue 19, item 2), never by token subject.
    admin = pseudonymous_id(kvik.settings.hub.subject_key, "admin-7f3a")
    assert [(a["action"], a["actor"]) for a in audit] == [("revoke", admin), ("reinstate", admin)]
    assert dt.datetime.fromisoformat(audit[-1]["at"]).tzinfo is not None
    view = (await kvik.client.get(f"/kiosks/{KIOSK}", headers=kvik.admin)).json()
    assert (view["status"], view["token_issued_at"]) == ("active", audit[-1]["at"])
    assert "token" not in view


async def test_reinstating_an_active_kiosk_is_refused(kvik: Kvik) -> None:
    token = await kvik.register(KIOSK)
    before = await kvik.snapshot()
    response = await kvik.client.post(f"/kiosks/{KIOSK}/reinstate", headers=kvik.admin)
    assert response.status_code == 409
    assert await kvik.snapshot() == before
    still = await kvik.client.post("/sessions", json=session_body(KIOSK), headers=bearer(token))
    assert still.status_code == 201


async def test_an_unknown_token_is_refused(kvik: Kvik) -> None:
    response = await kvik.client.post(
        "/sessions", json=session_body(KIOSK), headers=bearer("kvk_not-a-token")
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def strict(hub_settings: HubSettings) -> AsyncIterator[Kvik]:
    """A kvik app whose kiosks may make 3 requests at once and one every 100 s after."""
    settings = kvik_settings(hub_settings, rate_burst=3, rate_per_second=0.01)
    async with running(settings) as app:
        await app.seed()
        yield app


async def test_a_kiosk_over_its_rate_gets_429_with_retry_after(strict: Kvik) -> None:
    headers = bearer(await strict.register(KIOSK))
    statuses = []
    for _ in range(4):
        response = await strict.client.post(
            f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=headers
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    assert 1 <= int(response.headers["Retry-After"]) <= 100


async def test_session_posts_count_against_the_rate_too(strict: Kvik) -> None:
    headers = bearer(await strict.register(KIOSK))
    statuses = [
        (
            await strict.client.post("/sessions", json=session_body(KIOSK), headers=headers)
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


async def test_the_rate_limit_is_per_kiosk(strict: Kvik) -> None:
    first = bearer(await strict.register(KIOSK))
    second = bearer(await strict.register("kiosk-test-02"))
    for _ in range(3):
        await strict.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=first)
    response = await strict.client.post(
        "/kiosks/kiosk-test-02/heartbeat", json=HEARTBEAT, headers=second
    )
    assert response.status_code == 200


async def test_the_first_heartbeat_brings_a_kiosk_online_once(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    first = await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    second = await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    assert (first.json()["came_online"], second.json()["came_online"]) == (True, False)
    events = await kvik.events(expect=2)
    assert [e.type for e in events].count(EventType.KVIK_KIOSK_ONLINE) == 1
    assert await kvik.events_after(events) == []


async def test_a_kiosk_may_not_send_heartbeats_for_another(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    response = await kvik.client.post(
        "/kiosks/kiosk-other/heartbeat", json=HEARTBEAT, headers=kiosk
    )
    assert response.status_code == 403


async def test_a_silent_kiosk_goes_offline_exactly_once_across_replicas_and_back_online(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)  # 4 silent 1 s intervals
    flipped = await asyncio.gather(
        *(kvik.service.kiosks.check_liveness_once(later) for _ in range(4))
    )
    assert sum(flipped) == 1
    assert (await kvik.client.get(f"/kiosks/{KIOSK}", headers=kvik.admin)).json()["online"] is False
    back = await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    assert back.json()["came_online"] is True
    events = await kvik.events(expect=4)
    assert [e.type for e in events if e.type is not EventType.KVIK_KIOSK_REGISTERED] == [
        EventType.KVIK_KIOSK_ONLINE,
        EventType.KVIK_KIOSK_OFFLINE,
        EventType.KVIK_KIOSK_ONLINE,
    ]


async def test_a_kiosk_silent_for_less_than_three_intervals_stays_online(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    assert await kvik.service.kiosks.check_liveness_once(soon) == 0


async def test_a_kiosk_silent_while_its_entry_is_closed_stays_online(
    kvik: Kvik, kiosk: dict[str, str]
) -> None:
    await kvik.client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=kiosk)
    await kvik.apply(entry_event(version=2, hours={"weekly": [], "exceptions": []}))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    assert await kvik.service.kiosks.check_liveness_once(later) == 0
