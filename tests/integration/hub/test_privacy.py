"""``kanalhub privacy pseudonymise`` against a real Valkey: records written before pseudonymous
ids (raw token subjects) are rewritten with the id the same person gets today; a second run
changes nothing; a dry run writes nothing but reports (issue 19, item 2)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from services.contracts.reference import District
from services.hub.privacy import RecordKind, Tally, pseudonymise
from services.kvik.store import SERVICE as KVIK
from services.kvik.store import KvikStore
from services.mobile.domain import HistoryRecord, OverrideRecord, Place, Series, Visit, VisitStatus
from services.mobile.store import StoreKeys
from services.plumbing.outbox import Outbox
from services.plumbing.pseudonyms import pseudonymous_id
from services.plumbing.settings import HubSettings
from services.registry.store import SEED_ACTOR, Kind, RegistryStore
from services.registry.store import SERVICE as REGISTRY

pytestmark = pytest.mark.integration

EDITOR = "jens.hansen@kk.dk"
PLANNER = "employee-40871"
STAFF = "mette@kk.dk"
ADMIN = "admin-7"
AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
async def redis(hub_settings: HubSettings) -> AsyncIterator[Redis]:
    """A client of the session Valkey answering bytes, as the services' clients do."""
    client = Redis.from_url(hub_settings.redis_url, socket_timeout=5)
    yield client
    await client.aclose()


async def _get(redis: Redis, key: str) -> bytes:
    raw = await redis.get(key)
    assert isinstance(raw, bytes), key
    return raw


def _p(hub: HubSettings, subject: str) -> str:
    return pseudonymous_id(hub.subject_key, subject)


class OldRecords:
    """Records as the services stored them before pseudonymous ids, written straight into
    Valkey under the stores' own key names."""

    def __init__(self, redis: Redis, hub: HubSettings) -> None:
        self.redis = redis
        self.hub = hub
        self.registry = RegistryStore(redis, hub, Outbox(redis, hub, REGISTRY), "/test")
        self.mobile = StoreKeys(hub)
        self.kvik = KvikStore(redis, hub, Outbox(redis, hub, KVIK))

    async def write(self) -> None:
        audit = [
            {"at": AT.isoformat(), "actor": SEED_ACTOR, "action": "seeded", "version": 1},
            {"at": AT.isoformat(), "actor": EDITOR, "action": "updated", "version": 2},
            {"at": AT.isoformat(), "actor": _p(self.hub, EDITOR), "action": "updated"},
        ]
        await self.redis.rpush(
            self.registry.audit_key(Kind.ENTRY, "entry-old"), *[json.dumps(a) for a in audit]
        )
        await self.redis.rpush(
            self.registry.audit_key(Kind.SITE, "site-old"),
            json.dumps({"at": AT.isoformat(), "actor": EDITOR, "action": "created"}),
        )
        await self.redis.set(self.mobile.visit_key("visit-old"), self.visit().model_dump_json())
        await self.redis.set(self.mobile.series_key("series-old"), self.series().model_dump_json())
        await self.redis.rpush(
            self.kvik.kiosk_audit_key("kiosk-old"),
            json.dumps({"action": "rotate", "actor": ADMIN, "at": AT.isoformat()}),
        )
        await self.redis.hset(
            self.kvik.help_key("help-taken"),
            mapping={"state": "answered", "queue": "q1", "staff": STAFF},
        )
        await self.redis.expire(self.kvik.help_key("help-taken"), 3600)
        await self.redis.hset(
            self.kvik.help_key("help-waiting"), mapping={"state": "waiting", "queue": "q1"}
        )

    def visit(self) -> Visit:
        return Visit(
            visit_id="visit-old",
            version=2,
            place=Place(
                place_id="place-old",
                site_id=None,
                name="Vanløse Station",
                district=District("vanlose"),
                latitude=55.6873,
                longitude=12.4913,
                kind="train_station",
            ),
            starts_at=AT,
            ends_at=AT + dt.timedelta(hours=2),
            staff=("staff-a1b2c3",),
            kit=(),
            services=("passport",),
            slots=4,
            drop_ins=True,
            opening_hours="outside",
            override=OverrideRecord(by=PLANNER, at=AT),
            history=(
                HistoryRecord(at=AT, by=PLANNER, action="planned", status=VisitStatus.PLANNED),
                HistoryRecord(
                    at=AT, by=_p(self.hub, PLANNER), action="confirmed", status="confirmed"
                ),
            ),
        )

    def series(self) -> Series:
        return Series(
            series_id="series-old",
            version=2,
            rrule="FREQ=WEEKLY;COUNT=2",
            first_starts_at=dt.datetime(2026, 3, 2, 10, 0),
            duration_minutes=120,
            revisions=({"from_date": "2026-03-09", "scope": "following", "by": PLANNER},),
        )

    async def snapshot(self) -> dict[bytes, Any]:
        # the client answers bytes (no decode_responses)
        keys = cast(list[bytes], await self.redis.keys(f"{self.hub.key_prefix}:*"))
        return {key: await self.redis.dump(key) for key in sorted(keys)}


async def test_every_raw_subject_is_replaced_by_the_persons_pseudonymous_id(
    redis: Redis, hub_settings: HubSettings
) -> None:
    old = OldRecords(redis, hub_settings)
    await old.write()
    summary = await pseudonymise(redis, hub_settings)

    raw = await redis.lrange(old.registry.audit_key(Kind.ENTRY, "entry-old"), 0, -1)
    assert [json.loads(r)["actor"] for r in raw] == [
        SEED_ACTOR,
        _p(hub_settings, EDITOR),
        _p(hub_settings, EDITOR),
    ]
    (site_record,) = await redis.lrange(old.registry.audit_key(Kind.SITE, "site-old"), 0, -1)
    assert json.loads(site_record)["actor"] == _p(hub_settings, EDITOR)

    visit = Visit.model_validate_json(await _get(redis, old.mobile.visit_key("visit-old")))
    assert [h.by for h in visit.history] == [_p(hub_settings, PLANNER)] * 2
    assert visit.override is not None
    assert visit.override.by == _p(hub_settings, PLANNER)
    assert visit.model_copy(update={"history": (), "override": None}) == old.visit().model_copy(
        update={"history": (), "override": None}
    )
    series = Series.model_validate_json(await _get(redis, old.mobile.series_key("series-old")))
    assert [r["by"] for r in series.revisions] == [_p(hub_settings, PLANNER)]

    (kiosk_record,) = await redis.lrange(old.kvik.kiosk_audit_key("kiosk-old"), 0, -1)
    assert json.loads(kiosk_record) == {
        "action": "rotate",
        "actor": _p(hub_settings, ADMIN),
        "at": AT.isoformat(),
    }
    help_taken = await redis.hgetall(old.kvik.help_key("help-taken"))
    assert help_taken[b"staff"] == _p(hub_settings, STAFF).encode()
    assert help_taken[b"state"] == b"answered"
    assert await redis.ttl(old.kvik.help_key("help-taken")) > 0  # still expires with its TTL
    assert b"staff" not in await redis.hgetall(old.kvik.help_key("help-waiting"))

    everything = b"".join(v for v in (await old.snapshot()).values() if v)
    for subject in (EDITOR, PLANNER, STAFF, ADMIN):
        assert subject.encode() not in everything, subject
    assert summary == {
        RecordKind.REGISTRY_AUDIT: Tally(scanned=2, changed=2, replaced=2),
        RecordKind.MOBILE_VISIT: Tally(scanned=1, changed=1, replaced=2),
        RecordKind.MOBILE_SERIES: Tally(scanned=1, changed=1, replaced=1),
        RecordKind.KVIK_KIOSK_AUDIT: Tally(scanned=1, changed=1, replaced=1),
        RecordKind.KVIK_HELP: Tally(scanned=2, changed=1, replaced=1),
    }


async def test_a_second_run_changes_nothing(redis: Redis, hub_settings: HubSettings) -> None:
    old = OldRecords(redis, hub_settings)
    await old.write()
    await pseudonymise(redis, hub_settings)
    after_first = await old.snapshot()
    summary = await pseudonymise(redis, hub_settings)
    assert await old.snapshot() == after_first
    assert all(t.changed == 0 and t.replaced == 0 and t.scanned > 0 for t in summary.values())


async def test_a_dry_run_reports_what_would_change_and_writes_nothing(
    redis: Redis, hub_settings: HubSettings
) -> None:
    old = OldRecords(redis, hub_settings)
    await old.write()
    before = await old.snapshot()
    seen: list[tuple[RecordKind, int, int]] = []
    summary = await pseudonymise(
        redis, hub_settings, dry_run=True, progress=lambda *step: seen.append(step)
    )
    assert await old.snapshot() == before
    assert summary[RecordKind.MOBILE_VISIT] == Tally(scanned=1, changed=1, replaced=2)
    assert sum(t.changed for t in summary.values()) == 6
    assert (RecordKind.KVIK_HELP, 2, 2) in seen


async def test_an_unreadable_record_is_skipped_and_the_others_are_still_rewritten(
    redis: Redis, hub_settings: HubSettings
) -> None:
    old = OldRecords(redis, hub_settings)
    await old.write()
    await redis.set(old.mobile.visit_key("visit-broken"), b"{not json")
    await redis.rpush(old.kvik.help_key("help-of-another-shape"), b"x")
    summary = await pseudonymise(redis, hub_settings)
    assert summary[RecordKind.MOBILE_VISIT] == Tally(scanned=2, changed=1, replaced=2, skipped=1)
    assert summary[RecordKind.KVIK_HELP].skipped == 1
    assert await redis.get(old.mobile.visit_key("visit-broken")) == b"{not json"
    visit = Visit.model_validate_json(await _get(redis, old.mobile.visit_key("visit-old")))
    assert visit.override is not None
    assert visit.override.by == _p(hub_settings, PLANNER)


async def test_another_hubs_keys_are_left_alone(redis: Redis, hub_settings: HubSettings) -> None:
    other = hub_settings.model_copy(update={"key_prefix": hub_settings.key_prefix + "x"})
    theirs = OldRecords(redis, other)
    await theirs.write()
    before = await theirs.snapshot()
    summary = await pseudonymise(redis, hub_settings)
    assert await theirs.snapshot() == before
    assert all(t.scanned == 0 for t in summary.values())


def test_the_command_shows_a_summary_and_a_dry_run_writes_nothing(
    hub_settings: HubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis import Redis as SyncRedis
    from typer.testing import CliRunner

    from services.hub.cli import app

    monkeypatch.setenv("KANALHUB_REDIS_URL", hub_settings.redis_url)
    monkeypatch.setenv("KANALHUB_KEY_PREFIX", hub_settings.key_prefix)
    unconnected = Redis.from_url(hub_settings.redis_url)  # for the key names only
    kiosk_audit = KvikStore(
        unconnected, hub_settings, Outbox(unconnected, hub_settings, KVIK)
    ).kiosk_audit_key("kiosk-cli")
    record = json.dumps({"action": "revoke", "actor": ADMIN, "at": AT.isoformat()})
    with SyncRedis.from_url(hub_settings.redis_url) as client:
        client.rpush(kiosk_audit, record)
        dry = CliRunner().invoke(app, ["privacy", "pseudonymise", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "dry run" in dry.output
        assert client.lrange(kiosk_audit, 0, -1) == [record.encode()]
        done = CliRunner().invoke(app, ["privacy", "pseudonymise"])
        assert done.exit_code == 0, done.output
        assert "kvik kiosk audit trails" in done.output
        (stored,) = client.lrange(kiosk_audit, 0, -1)
    assert json.loads(stored)["actor"] == _p(hub_settings, ADMIN)
