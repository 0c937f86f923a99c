"""No record can block a shared loop (issue 19, item 1): a malformed record written straight
into Valkey is quarantined with its reason and counted, and the loop still handles every other
item in the same round; operators list, release and drop quarantined items."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner, Result

from services.contracts import EventType
from services.hub.cli import app as cli
from services.kvik.commands import quarantine_drop, quarantine_list, quarantine_release
from services.kvik.store import to_ms
from tests.integration.kvik.conftest import Kvik
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

GOOD_KIOSK = "kiosk-good-01"
BAD_KIOSK = "kiosk-bad-01"
CPR_STEP = "s_0102031234"
TEAM = "team-amager-vest"


def _at(minutes_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


def _counted(loop: str) -> float:
    value = REGISTRY.get_sample_value("kanalhub_kvik_quarantined_total", {"loop": loop})
    return value or 0.0


async def _start(kvik: Kvik, token: str, kiosk_id: str) -> str:
    sid = str(uuid4())
    response = await kvik.client.post(
        f"/sessions/{sid}/start",
        json={"kiosk_id": kiosk_id, "service": "passport", "started_at": _at(3)},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return sid


async def _poisoned_sessions(kvik: Kvik) -> tuple[str, str, str]:
    """A normal idle session of one kiosk, and two of another written wrong straight into
    Valkey: one whose stored steps hold a CPR-shaped code (what the streaming route once
    stored), one whose record does not parse. Returns their ids: good, cpr, corrupt."""
    good = await _start(kvik, await kvik.register(GOOD_KIOSK), GOOD_KIOSK)
    bad_token = await kvik.register(BAD_KIOSK)
    cpr = await _start(kvik, bad_token, BAD_KIOSK)
    store = kvik.service.store
    redis = kvik.runtime.redis
    await redis.hset(store.session_key(cpr), mapping={"s:0": "identify", "s:1": CPR_STEP})
    corrupt = str(uuid4())
    await redis.hset(
        store.session_key(corrupt),
        mapping={
            "state": "open",
            "kiosk_id": BAD_KIOSK,
            "entry_id": "kvik-test",
            "service": "passport",
            "start_fp": "x",
            "started_at": '{"not": "a time"',
            "last_at_ms": "{corrupt",
            "rev": "1",
        },
    )
    await redis.zadd(store.open_key, {corrupt: to_ms(dt.datetime.now(dt.UTC))})
    return good, cpr, corrupt


def _later(kvik: Kvik) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=kvik.settings.idle_timeout_seconds + 5)


async def test_a_poisoned_session_is_quarantined_and_another_kiosks_idle_session_is_still_swept(
    kvik: Kvik,
) -> None:
    good, cpr, corrupt = await _poisoned_sessions(kvik)
    before = _counted("sweeper")
    assert await kvik.service.streaming.sweep_once(_later(kvik)) == 1
    store = kvik.service.store
    assert (await store.session(good))["state"] == "ended"
    events = await kvik.events(expect=3)  # two registrations and the abandoned session
    swept = [e for e in events if e.type is EventType.KVIK_SESSION_ABANDONED]
    assert [e.data.model_dump(mode="json")["session_id"] for e in swept] == [good]
    assert await kvik.events_after(events) == []
    # The bad ones are out of the sweeper's set, in the quarantine with a reason, counted.
    assert await kvik.runtime.redis.zscore(store.open_key, cpr) is None
    assert await kvik.runtime.redis.zscore(store.open_key, corrupt) is None
    held = await store.quarantined()
    assert set(held) == {f"sweeper:{cpr}", f"sweeper:{corrupt}"}
    assert "personal_data" in held[f"sweeper:{cpr}"]["reason"]
    assert held[f"sweeper:{corrupt}"]["reason"] == "ValueError"
    assert _counted("sweeper") == before + 2
    # Nothing quarantined ever holds the offending value.
    assert CPR_STEP not in json.dumps(held)
    # The next round has nothing left to fail on.
    assert await kvik.service.streaming.sweep_once(_later(kvik)) == 0
    assert _counted("sweeper") == before + 2


async def test_a_released_session_goes_back_to_the_sweeper_and_a_dropped_one_is_deleted(
    kvik: Kvik,
) -> None:
    _, cpr, corrupt = await _poisoned_sessions(kvik)
    await kvik.service.streaming.sweep_once(_later(kvik))
    store = kvik.service.store
    redis = kvik.runtime.redis
    # An operator mends the corrupt record and releases it; it is swept next round.
    await redis.hset(store.session_key(corrupt), mapping={"started_at": _at(3), "last_at_ms": "0"})
    assert await quarantine_release(kvik.settings, f"sweeper:{corrupt}")
    assert await redis.zscore(store.open_key, corrupt) is not None
    assert await kvik.service.streaming.sweep_once(_later(kvik)) == 1
    assert (await store.session(corrupt))["state"] == "ended"
    # The CPR-shaped one can only be dropped: its record goes with it.
    assert await quarantine_drop(kvik.settings, f"sweeper:{cpr}")
    assert await redis.exists(store.session_key(cpr)) == 0
    assert await quarantine_list(kvik.settings) == []
    assert not await quarantine_drop(kvik.settings, f"sweeper:{cpr}")
    assert not await quarantine_release(kvik.settings, "sweeper:no-such-item")


async def test_the_quarantine_command_lists_releases_and_drops(
    kvik: Kvik, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cpr, corrupt = await _poisoned_sessions(kvik)
    await kvik.service.streaming.sweep_once(_later(kvik))
    monkeypatch.setenv("KANALHUB_REDIS_URL", kvik.hub.redis_url)
    monkeypatch.setenv("KANALHUB_KEY_PREFIX", kvik.hub.key_prefix)
    runner = CliRunner()

    async def run(*args: str) -> Result:
        # The command runs its own event loop, as from a shell: in a thread of its own here.
        return await asyncio.to_thread(runner.invoke, cli, ["kvik", "quarantine", *args])

    listed = await run("list")
    assert listed.exit_code == 0, listed.output
    assert cpr in listed.output
    assert corrupt in listed.output
    assert CPR_STEP not in listed.output
    released = await run("release", f"sweeper:{corrupt}")
    dropped = await run("drop", f"sweeper:{cpr}")
    unknown = await run("drop", f"sweeper:{cpr}")
    assert (released.exit_code, dropped.exit_code, unknown.exit_code) == (0, 0, 1)
    assert await kvik.service.store.quarantined() == {}
    assert await kvik.runtime.redis.zscore(kvik.service.store.open_key, corrupt) is not None


async def test_a_kiosk_whose_record_is_broken_is_quarantined_and_others_still_go_offline(
    kvik: Kvik,
) -> None:
    token = await kvik.register(GOOD_KIOSK)
    heartbeat = {"software_version": "2.4.1", "state": "ready"}
    response = await kvik.client.post(
        f"/kiosks/{GOOD_KIOSK}/heartbeat", json=heartbeat, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    store = kvik.service.store
    redis = kvik.runtime.redis
    # Online, but the record names no entry: the offline check cannot read it.
    await redis.hset(store.kiosk_key(BAD_KIOSK), mapping={"online": "1", "status": "active"})
    await redis.zadd(store.seen_key, {BAD_KIOSK: to_ms(dt.datetime.now(dt.UTC))})
    before = _counted("liveness")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    assert await kvik.service.kiosks.check_liveness_once(later) == 1
    view = await kvik.client.get(f"/kiosks/{GOOD_KIOSK}", headers=kvik.admin)
    assert view.json()["online"] is False
    held = await store.quarantined()
    assert held[f"liveness:{BAD_KIOSK}"]["reason"] == "KeyError: missing field entry_id"
    assert _counted("liveness") == before + 1
    assert await redis.zscore(store.seen_key, BAD_KIOSK) is None


async def test_a_help_request_whose_record_breaks_the_move_is_quarantined_and_others_escalate(
    kvik: Kvik,
) -> None:
    token = await kvik.register(GOOD_KIOSK)
    good = {
        "help_request_id": str(uuid4()),
        "kiosk_id": GOOD_KIOSK,
        "session_id": str(uuid4()),
        "channel": "video",
    }
    assert (await kvik.client.post("/help", json=good, headers=bearer(token))).status_code == 201
    store = kvik.service.store
    redis = kvik.runtime.redis
    # Waiting in the team's queue, but without the request time the move compares against:
    # the escalation script fails on it.
    bad = str(uuid4())
    await redis.hset(store.help_key(bad), mapping={"state": "waiting", "queue": TEAM})
    await redis.zadd(store.queue_key(TEAM), {bad: to_ms(dt.datetime.now(dt.UTC))})
    before = _counted("escalation")
    late = dt.datetime.now(dt.UTC) + dt.timedelta(
        seconds=kvik.settings.help_escalate_after_seconds + 1
    )
    assert await kvik.service.help.escalate_once(late) == 1
    centre = (await kvik.client.get("/help/queues/contact-centre", headers=kvik.staff)).json()
    assert [item["help_request_id"] for item in centre] == [good["help_request_id"]]
    held = await store.quarantined()
    assert held[f"escalation:{bad}"]["reason"].startswith("ResponseError: script failed")
    assert _counted("escalation") == before + 1
    # Released, it goes back to the queue it came from.
    assert await store.release(f"escalation:{bad}")
    assert await redis.zscore(store.queue_key(TEAM), bad) is not None
