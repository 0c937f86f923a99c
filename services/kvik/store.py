"""The only module of the kvik service that talks to Redis; every key name is defined here.

Keys (under ``<prefix>:kvik:``):

- ``entry:<id>`` - hash, the copy of a registry entry: ``version``, ``kind``, ``district``,
  ``status``, ``hours`` (opening hours JSON). Upserts older than the stored version are dropped.
- ``catalogue`` - set of the active service codes; ``catalogue:versions`` - hash code -> version.
- ``kiosk:<id>`` - hash: ``entry_id``, ``district``, ``token_hash``, ``status`` (active/revoked),
  ``registered_at``, ``online`` (1/0, absent before the first heartbeat), ``software_version``,
  ``state``, ``last_seen``. ``kiosks`` - set of the ids. ``token:<sha256>`` - the kiosk id a
  device token belongs to (deleted on rotation and revocation, so a revoked token fails at once).
  ``kiosk:<id>`` also has ``token_issued_at`` once a token was rotated or reinstated.
- ``kiosk-audit:<id>`` - list of JSON records ``{action, actor, at}`` of the administrators'
  token changes (rotate, revoke, reinstate), oldest first, the last 1,000 kept.
- ``rate:<kiosk>`` - the kiosk's token bucket (``tokens``, ``ts``).
- ``token-failures:<address>`` - failed device-token attempts from one client address in the
  current window (a counter that expires with its window; ``token_failures.py``).
- ``heartbeats`` - sorted set kiosk -> time of its last heartbeat (ms), for the liveness monitor.
- ``session:<id>`` - hash: ``state`` (open/ended), ``kiosk_id``, ``entry_id``, ``service``,
  ``started_at``, ``start_fp``, ``last_at_ms`` (the kiosk's latest time), ``s:<seq>`` (streamed
  steps), ``rev`` (raised by every change), ``fingerprint`` and ``result`` once ended.
- ``open`` - sorted set session -> last activity (ms): what the idle sweeper looks at.
- ``help:<id>`` - hash of a help request; ``helpq:<queue>`` - sorted set of waiting requests.
- ``quarantine`` - hash ``<loop>:<item>`` -> JSON ``{loop, item, reason, at, set, score,
  record}``: what a periodic loop (sweeper, liveness, escalation) could not process, moved out
  of the sorted set it came from (``set``, with its ``score``) so it cannot fail every round
  again; ``record`` is the key an operator's drop deletes ("" for none). Never the offending
  value, only why.

The Lua scripts are the ``lua/*.lua`` files next to this module (:func:`lua_source`).
Every write that publishes an event is one Lua script that checks the current state, changes it
and XADDs the event to the outbox (``Outbox.entry`` gives the fields): state and event commit
together or not at all, and two replicas (or two sweepers) racing for the same change cannot
both win. Scripts that must re-read a record (the end of a streamed session, the sweeper)
compare its ``rev`` and return ``retry`` when it moved.

The authentication script reads the kiosk and entry keys it finds through the token key, so it
needs a single Redis/Valkey (or Sentinel) - not Cluster, where those keys would need hash tags.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.contracts import CloudEvent, EncodedEvent, topic_for
from services.contracts.payloads.registry import EntryUpserted, OpeningHours
from services.plumbing.outbox import Outbox
from services.plumbing.redis_replies import reply_text, reply_texts
from services.plumbing.settings import HubSettings

SERVICE = "kvik"

_LUA = importlib.resources.files("services.kvik") / "lua"
"""The scripts, one ``.lua`` file each; a file whose comment says "Needs x" is sent with the
library files ``x.lua`` in front of it (``stage``: put an event into the outbox; ``kiosk_auth``:
look a token up and take from the kiosk's bucket; ``record_fn``: record a whole session)."""

_SCRIPTS: dict[str, tuple[str, ...]] = {
    "auth": ("kiosk_auth",),
    "record": ("stage", "record_fn"),
    "record_as": ("kiosk_auth", "stage", "record_fn"),
    "start": (),
    "steps": (),
    "end": ("stage",),
    "abandon": ("stage",),
    "drop": (),
    "register": ("stage",),
    "rotate": (),
    "revoke": (),
    "reinstate": (),
    "heartbeat": ("stage",),
    "offline": ("stage",),
    "entry": (),
    "service": (),
    "help": ("stage",),
    "take": ("stage",),
    "escalate": (),
    "quarantine": (),
    "release": (),
    "drop_quarantined": (),
}
"""Every script by name, with the libraries it needs, in the order they are prepended."""


@functools.cache
def lua_source(name: str) -> str:
    """The source sent for script ``name``: its libraries, then its own file (read once)."""
    parts = (*_SCRIPTS[name], name)
    return "".join((_LUA / f"{part}.lua").read_text(encoding="utf-8") for part in parts)


def to_ms(when: dt.datetime) -> int:
    """Milliseconds since the epoch, as every time score here is kept."""
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class KioskAuth:
    """What the authentication script says about a device token."""

    outcome: str
    """ok, unknown, revoked or limited."""
    kiosk_id: str = ""
    entry_id: str = ""
    district: str = ""
    retry_after_ms: int = 0


@dataclass(frozen=True)
class Outcome:
    """What a write script answered: ``status`` and, for created/replay, the stored result."""

    status: str
    result: str | None = None


@dataclass(frozen=True)
class EntryCopy:
    """The kvik service's copy of one registry entry."""

    entry_id: str
    version: int
    kind: str
    district: str
    status: str
    hours: OpeningHours | None


class KvikStore:
    """Kiosks, sessions, help requests and the registry copy, in Redis."""

    def __init__(self, redis: Redis, settings: HubSettings, outbox: Outbox) -> None:
        self.redis = redis
        self.settings = settings
        self.outbox = outbox
        self.base = settings.key(SERVICE, "")
        self._topics: dict[str, str] = {}
        self._auth = redis.register_script(lua_source("auth"))
        self._record = redis.register_script(lua_source("record"))
        self._record_as = redis.register_script(lua_source("record_as"))
        self._start = redis.register_script(lua_source("start"))
        self._steps = redis.register_script(lua_source("steps"))
        self._end = redis.register_script(lua_source("end"))
        self._abandon = redis.register_script(lua_source("abandon"))
        self._drop = redis.register_script(lua_source("drop"))
        self._register = redis.register_script(lua_source("register"))
        self._rotate = redis.register_script(lua_source("rotate"))
        self._revoke = redis.register_script(lua_source("revoke"))
        self._reinstate = redis.register_script(lua_source("reinstate"))
        self._heartbeat = redis.register_script(lua_source("heartbeat"))
        self._offline = redis.register_script(lua_source("offline"))
        self._entry = redis.register_script(lua_source("entry"))
        self._service = redis.register_script(lua_source("service"))
        self._help = redis.register_script(lua_source("help"))
        self._take = redis.register_script(lua_source("take"))
        self._escalate = redis.register_script(lua_source("escalate"))
        self._quarantine = redis.register_script(lua_source("quarantine"))
        self._release = redis.register_script(lua_source("release"))
        self._drop_quarantined = redis.register_script(lua_source("drop_quarantined"))

    # --- key names ----------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        """A key of this service."""
        return self.settings.key(SERVICE, *parts)

    def entry_key(self, entry_id: str) -> str:
        """The copy of one registry entry."""
        return self.key("entry", entry_id)

    @property
    def entries_key(self) -> str:
        """The ids of every entry copied."""
        return self.key("entries")

    @property
    def catalogue_key(self) -> str:
        """The active service codes."""
        return self.key("catalogue")

    @property
    def catalogue_versions_key(self) -> str:
        """The highest version seen per service code."""
        return self.key("catalogue", "versions")

    def kiosk_key(self, kiosk_id: str) -> str:
        """One kiosk."""
        return self.key("kiosk", kiosk_id)

    @property
    def kiosks_key(self) -> str:
        """The ids of every kiosk."""
        return self.key("kiosks")

    def kiosk_audit_key(self, kiosk_id: str) -> str:
        """The administrators' token changes of one kiosk."""
        return self.key("kiosk-audit", kiosk_id)

    def token_key(self, token_hash: str) -> str:
        """Which kiosk a device token (by hash) belongs to."""
        return self.key("token", token_hash)

    def token_failures_key(self, address: str) -> str:
        """Failed device-token attempts from one client address in the current window."""
        return self.key("token-failures", address)

    @property
    def seen_key(self) -> str:
        """Kiosk -> last heartbeat (ms)."""
        return self.key("heartbeats")

    def session_key(self, session_id: str) -> str:
        """One session."""
        return self.key("session", session_id)

    @property
    def open_key(self) -> str:
        """Open sessions -> last activity (ms)."""
        return self.key("open")

    def help_key(self, help_id: str) -> str:
        """One help request."""
        return self.key("help", help_id)

    def queue_key(self, queue: str) -> str:
        """The waiting help requests of one queue, by request time."""
        return self.key("helpq", queue)

    @property
    def quarantine_key(self) -> str:
        """Items the periodic loops could not process, set aside for an operator."""
        return self.key("quarantine")

    def _event_args(self, event: CloudEvent | EncodedEvent) -> list[bytes]:
        if isinstance(event, EncodedEvent):
            fields = self._encoded_fields(event)
        else:
            fields = [
                value if isinstance(value, bytes) else value.encode()
                for value in self.outbox.entry(event).values()
            ]
        if any(b"\n" in field for field in fields):
            raise ValueError("an outbox field holds a newline")  # compact JSON never does
        return [b"\n".join(fields)]

    def _encoded_fields(self, event: EncodedEvent) -> list[bytes]:
        """``Outbox.entry``'s fields, in its order and spelling, of an already encoded event
        (the relay reads both alike; a unit test holds the two to the same bytes)."""
        topic = self._topics.get(event.type)
        if topic is None:
            topic = self._topics[event.type] = self.settings.topic(topic_for(event.type))
        return [
            str(event.id).encode(),
            str(event.type).encode(),
            topic.encode(),
            event.subject.encode(),
            event.value,
            json.dumps([[k, v.decode()] for k, v in event.headers]).encode(),
        ]

    # --- registry copy ------------------------------------------------------------------------

    async def apply_entry(self, pipe: Pipeline, entry: EntryUpserted) -> None:
        """Queue the copy of an upserted entry (dropped by the script if not newer)."""
        hours = entry.opening_hours.model_dump_json()
        await self._entry(
            keys=[self.entry_key(entry.entry_id), self.entries_key],
            args=[
                entry.version,
                entry.kind.value,
                entry.district.value if entry.district else "",
                entry.status.value,
                hours,
                entry.entry_id,
            ],
            client=pipe,
        )

    async def retire_entry(self, pipe: Pipeline, entry_id: str, version: int) -> None:
        """Queue an entry's retirement (no kiosk can be registered there any more)."""
        await self._entry(
            keys=[self.entry_key(entry_id), self.entries_key],
            args=[version, "retired", "", "", "", entry_id],
            client=pipe,
        )

    async def apply_service(self, pipe: Pipeline, code: str, version: int, active: bool) -> None:
        """Queue a catalogue change (dropped by the script if not newer)."""
        await self._service(
            keys=[self.catalogue_key, self.catalogue_versions_key],
            args=[code, version, "1" if active else "0"],
            client=pipe,
        )

    async def entry(self, entry_id: str) -> EntryCopy | None:
        """The copy of one entry, or None if no event named it."""
        raw = reply_texts(await self.redis.hgetall(self.entry_key(entry_id)))
        if not raw:
            return None
        hours = raw.get("hours")
        return EntryCopy(
            entry_id=entry_id,
            version=int(raw["version"]),
            kind=raw.get("kind", ""),
            district=raw.get("district", ""),
            status=raw.get("status", ""),
            hours=OpeningHours.model_validate_json(hours) if hours else None,
        )

    async def catalogue(self) -> set[str]:
        """The active service codes."""
        return {reply_text(code) for code in await self.redis.smembers(self.catalogue_key)}

    # --- kiosks -------------------------------------------------------------------------------

    async def authenticate(self, token_hash: str, rate: float, burst: int) -> KioskAuth:
        """Look a device token up and take one token from its kiosk's bucket, in one step."""
        reply = await self._auth(
            keys=[self.token_key(token_hash)], args=[self.base, token_hash, rate, burst]
        )
        parts = [reply_text(part) for part in reply]
        if parts[0] in {"unknown", "revoked"}:
            return KioskAuth(parts[0])
        return KioskAuth(parts[0], parts[1], parts[2], parts[3], int(parts[4]))

    async def count_token_failure(self, address: str, window_ms: int) -> tuple[int, int]:
        """One more failed device-token attempt from ``address``: the attempts in the current
        window (which the first one opens) and the milliseconds left in it."""
        key = self.token_failures_key(address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, window_ms, nx=True)
            pipe.pttl(key)
            count, _, left = await pipe.execute()
        return int(count), max(0, int(left))

    async def register_kiosk(
        self,
        kiosk_id: str,
        entry: EntryCopy,
        token_hash: str,
        registered_at: dt.datetime,
        event: CloudEvent,
    ) -> str:
        """Store a new kiosk, its token and the registered event: ok, exists or retry."""
        reply = await self._register(
            keys=[
                self.kiosk_key(kiosk_id),
                self.token_key(token_hash),
                self.kiosks_key,
                self.outbox.stream,
                self.entry_key(entry.entry_id),
            ],
            args=[
                kiosk_id,
                entry.entry_id,
                token_hash,
                registered_at.isoformat(),
                entry.district,
                entry.version,
                *self._event_args(event),
            ],
        )
        return reply_text(reply)

    async def rotate_token(
        self, kiosk_id: str, token_hash: str, now: dt.datetime, audit: str
    ) -> str:
        """Replace an active kiosk's token (the old one stops working at once) and append
        ``audit`` to its audit list: ok, unknown or revoked."""
        reply = await self._rotate(
            keys=[
                self.kiosk_key(kiosk_id),
                self.token_key(token_hash),
                self.kiosk_audit_key(kiosk_id),
            ],
            args=[kiosk_id, token_hash, self.base, now.isoformat(), audit],
        )
        return reply_text(reply)

    async def reinstate(self, kiosk_id: str, token_hash: str, now: dt.datetime, audit: str) -> str:
        """Bring a revoked kiosk back with a new token and append ``audit`` to its audit
        list: ok, unknown or active (it was not revoked)."""
        reply = await self._reinstate(
            keys=[
                self.kiosk_key(kiosk_id),
                self.token_key(token_hash),
                self.kiosk_audit_key(kiosk_id),
            ],
            args=[kiosk_id, token_hash, self.base, now.isoformat(), audit],
        )
        return reply_text(reply)

    async def revoke(self, kiosk_id: str, audit: str) -> str:
        """Revoke a kiosk's token (``audit`` appended when it was active): ok or unknown."""
        reply = await self._revoke(
            keys=[self.kiosk_key(kiosk_id), self.seen_key, self.kiosk_audit_key(kiosk_id)],
            args=[kiosk_id, self.base, audit],
        )
        return reply_text(reply)

    async def kiosk_audit(self, kiosk_id: str) -> list[str]:
        """The kiosk's audit records (JSON), oldest first."""
        return [
            reply_text(item)
            for item in await self.redis.lrange(self.kiosk_audit_key(kiosk_id), 0, -1)
        ]

    async def kiosk(self, kiosk_id: str) -> dict[str, str] | None:
        """One kiosk's hash, or None."""
        raw = reply_texts(await self.redis.hgetall(self.kiosk_key(kiosk_id)))
        return raw or None

    async def heartbeat(
        self,
        kiosk_id: str,
        software_version: str,
        state: str,
        now: dt.datetime,
        online_event: CloudEvent,
    ) -> str:
        """Record a heartbeat: 'online' if it brought the kiosk online, 'ok', or 'inactive'."""
        reply = await self._heartbeat(
            keys=[self.kiosk_key(kiosk_id), self.seen_key, self.outbox.stream],
            args=[
                kiosk_id,
                software_version,
                state,
                now.isoformat(),
                to_ms(now),
                *self._event_args(online_event),
            ],
        )
        return reply_text(reply)

    async def silent_kiosks(
        self, cutoff: dt.datetime, limit: int = 10_000
    ) -> list[tuple[str, int]]:
        """Kiosks whose last heartbeat is at or before ``cutoff``, with that time (ms)."""
        rows = await self.redis.zrangebyscore(
            self.seen_key, "-inf", to_ms(cutoff), start=0, num=limit, withscores=True
        )
        pairs = cast(list[tuple[Any, float]], rows)
        return [(reply_text(member), int(score)) for member, score in pairs]

    async def mark_offline(self, kiosk_id: str, cutoff: dt.datetime, event: CloudEvent) -> bool:
        """Flip an online kiosk still silent since ``cutoff`` offline; True for the one winner."""
        reply = await self._offline(
            keys=[self.kiosk_key(kiosk_id), self.seen_key, self.outbox.stream],
            args=[kiosk_id, to_ms(cutoff), *self._event_args(event)],
        )
        return bool(int(reply))

    # --- sessions -----------------------------------------------------------------------------

    async def record_session(
        self,
        pipe: Pipeline | None,
        *,
        session_id: str,
        kiosk_id: str,
        service: str,
        fingerprint: str,
        result: str,
        event: CloudEvent | EncodedEvent,
        ttl: int,
    ) -> Any:
        """Record a whole session and stage its event, or find it recorded already.

        With ``pipe`` the call is only queued (a batch runs one script per item in one round
        trip; each script is atomic on its own); without, it returns the script's reply.
        """
        return await self._record(
            keys=[
                self.session_key(session_id),
                self.kiosk_key(kiosk_id),
                self.catalogue_key,
                self.outbox.stream,
            ],
            args=[fingerprint, result, ttl, kiosk_id, service, *self._event_args(event)],
            client=pipe,
        )

    async def record_session_as(
        self,
        token_hash: str,
        rate: float,
        burst: int,
        *,
        session_id: str,
        kiosk_id: str,
        entry_id: str,
        district: str,
        service: str,
        fingerprint: str,
        result: str,
        event: CloudEvent | EncodedEvent,
        ttl: int,
    ) -> list[str]:
        """Check the token (and take from its bucket) and record a whole session, in one round
        trip. The event was built for ``entry_id``/``district``; if the kiosk's are not those
        any more the answer is ``stale`` and nothing is written."""
        reply = await self._record_as(
            keys=[
                self.token_key(token_hash),
                self.session_key(session_id),
                self.kiosk_key(kiosk_id),
                self.catalogue_key,
                self.outbox.stream,
            ],
            args=[
                self.base,
                token_hash,
                rate,
                burst,
                kiosk_id,
                entry_id,
                district,
                fingerprint,
                result,
                ttl,
                service,
                *self._event_args(event),
            ],
        )
        return [reply_text(part) for part in reply]

    async def start_session(
        self,
        *,
        session_id: str,
        kiosk_id: str,
        entry_id: str,
        service: str,
        started_at: dt.datetime,
        start_fp: str,
        now: dt.datetime,
        ttl: int,
    ) -> Outcome:
        """Open a streamed session (or find the same start again)."""
        reply = await self._start(
            keys=[
                self.session_key(session_id),
                self.kiosk_key(kiosk_id),
                self.catalogue_key,
                self.open_key,
            ],
            args=[
                start_fp,
                kiosk_id,
                service,
                started_at.astimezone(dt.UTC).isoformat(),
                entry_id,
                ttl,
                session_id,
                to_ms(started_at),
                to_ms(now),
            ],
        )
        return _outcome(reply)

    async def add_steps(
        self,
        *,
        session_id: str,
        kiosk_id: str,
        steps: Sequence[tuple[int, str, dt.datetime]],
        now: dt.datetime,
        ttl: int,
    ) -> Outcome:
        """Add streamed steps (seq, code, at); repeats are no-ops, a changed step a conflict."""
        flat: list[Any] = []
        for seq, code, at in steps:
            flat.extend((seq, code, to_ms(at)))
        reply = await self._steps(
            keys=[self.session_key(session_id), self.kiosk_key(kiosk_id), self.open_key],
            args=[kiosk_id, ttl, to_ms(now), len(steps), *flat, session_id],
        )
        return _outcome(reply)

    async def session(self, session_id: str) -> dict[str, str]:
        """A session's hash (empty if unknown)."""
        return reply_texts(await self.redis.hgetall(self.session_key(session_id)))

    async def end_session(
        self,
        *,
        session_id: str,
        kiosk_id: str,
        expected_rev: str,
        fingerprint: str,
        result: str,
        service: str,
        start_fp: str,
        started_at: dt.datetime,
        event: CloudEvent | EncodedEvent,
        ttl: int,
    ) -> Outcome:
        """End a streamed session and stage its event, if it is still at ``expected_rev``."""
        reply = await self._end(
            keys=[
                self.session_key(session_id),
                self.kiosk_key(kiosk_id),
                self.catalogue_key,
                self.open_key,
                self.outbox.stream,
            ],
            args=[
                expected_rev,
                fingerprint,
                result,
                kiosk_id,
                service,
                start_fp,
                started_at.astimezone(dt.UTC).isoformat(),
                ttl,
                session_id,
                *self._event_args(event),
            ],
        )
        return _outcome(reply)

    async def idle_sessions(self, cutoff: dt.datetime, limit: int = 500) -> list[str]:
        """Open sessions with no activity since ``cutoff``, oldest first."""
        rows = await self.redis.zrangebyscore(
            self.open_key, "-inf", to_ms(cutoff), start=0, num=limit
        )
        return [reply_text(row) for row in rows]

    async def abandon(
        self, session_id: str, rev: str, cutoff: dt.datetime, result: str, event: CloudEvent
    ) -> bool:
        """Claim an idle session and stage its abandoned event; True only for the one winner."""
        reply = await self._abandon(
            keys=[self.session_key(session_id), self.open_key, self.outbox.stream],
            args=[rev, to_ms(cutoff), result, session_id, *self._event_args(event)],
        )
        return bool(int(reply))

    async def drop_orphan(self, session_id: str, rev: str, cutoff: dt.datetime) -> bool:
        """Forget an idle session that never started (no service, no event possible)."""
        reply = await self._drop(
            keys=[self.session_key(session_id), self.open_key],
            args=[rev, session_id, to_ms(cutoff)],
        )
        return bool(int(reply))

    # --- staff help ---------------------------------------------------------------------------

    async def request_help(
        self,
        *,
        help_id: str,
        kiosk_id: str,
        queue: str,
        fingerprint: str,
        requested: str,
        requested_at: dt.datetime,
        event: CloudEvent,
        ttl: int,
    ) -> str:
        """Queue a help request and stage its event: created, replay, conflict or inactive."""
        reply = await self._help(
            keys=[
                self.help_key(help_id),
                self.queue_key(queue),
                self.kiosk_key(kiosk_id),
                self.outbox.stream,
            ],
            args=[
                fingerprint,
                queue,
                to_ms(requested_at),
                requested,
                help_id,
                ttl,
                *self._event_args(event),
            ],
        )
        return reply_text(reply)

    async def help_request(self, help_id: str) -> dict[str, str]:
        """A help request's hash (empty if unknown)."""
        return reply_texts(await self.redis.hgetall(self.help_key(help_id)))

    async def queue(self, queue: str, limit: int = 200) -> list[dict[str, str]]:
        """The waiting requests of ``queue``, longest waiting first, with their ids."""
        ids = [reply_text(i) for i in await self.redis.zrange(self.queue_key(queue), 0, limit - 1)]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for help_id in ids:
                pipe.hgetall(self.help_key(help_id))
            rows = await pipe.execute()
        return [
            {**reply_texts(row), "id": help_id}
            for help_id, row in zip(ids, rows, strict=True)
            if row
        ]

    async def take_help(
        self, help_id: str, queue: str, staff: str, answered_at: dt.datetime, event: CloudEvent
    ) -> str:
        """Staff take a waiting request: ok, taken (someone was first), unknown or retry."""
        reply = await self._take(
            keys=[self.help_key(help_id), self.queue_key(queue), self.outbox.stream],
            args=[queue, staff, to_ms(answered_at), help_id, *self._event_args(event)],
        )
        return reply_text(reply)

    async def overdue_help(self, queue: str, cutoff: dt.datetime, limit: int = 500) -> list[str]:
        """Requests waiting in ``queue`` since before ``cutoff``."""
        rows = await self.redis.zrangebyscore(
            self.queue_key(queue), "-inf", to_ms(cutoff), start=0, num=limit
        )
        return [reply_text(row) for row in rows]

    async def escalate(self, help_id: str, from_queue: str, to_queue: str, cutoff: int) -> bool:
        """Move a request still waiting in ``from_queue`` since ``cutoff`` (ms) to ``to_queue``."""
        reply = await self._escalate(
            keys=[self.help_key(help_id), self.queue_key(from_queue), self.queue_key(to_queue)],
            args=[from_queue, to_queue, cutoff, help_id],
        )
        return bool(int(reply))

    # --- quarantine ---------------------------------------------------------------------------

    async def quarantine(
        self, *, loop: str, item: str, set_key: str, record_key: str, reason: str, at: dt.datetime
    ) -> bool:
        """Move ``item`` out of ``set_key`` into the quarantine; True if this call moved it."""
        entry = {
            "loop": loop,
            "item": item,
            "reason": reason,
            "at": at.astimezone(dt.UTC).isoformat(),
            "set": set_key,
            "record": record_key,
        }
        reply = await self._quarantine(
            keys=[set_key, self.quarantine_key],
            args=[item, quarantine_field(loop, item), dumps(entry)],
        )
        return bool(int(reply))

    async def quarantined(self) -> dict[str, dict[str, str]]:
        """Every quarantined item by its field (``<loop>:<item>``), as stored."""
        raw = reply_texts(await self.redis.hgetall(self.quarantine_key))
        return {field: _quarantine_entry(value) for field, value in raw.items()}

    async def release(self, field: str) -> bool:
        """Put a quarantined item back into its loop's set; False if there is no such item."""
        raw = await self.redis.hget(self.quarantine_key, field)
        if raw is None:
            return False
        entry = _quarantine_entry(reply_text(raw))
        reply = await self._release(
            keys=[entry["set"], self.quarantine_key],
            args=[field, raw, entry["item"], entry["score"]],
        )
        return bool(int(reply))

    async def drop_quarantined(self, field: str) -> bool:
        """Forget a quarantined item and delete its record, if it names one; False if there is
        no such item."""
        raw = await self.redis.hget(self.quarantine_key, field)
        if raw is None:
            return False
        record = _quarantine_entry(reply_text(raw)).get("record") or self.quarantine_key
        reply = await self._drop_quarantined(keys=[self.quarantine_key, record], args=[field, raw])
        return bool(int(reply))


def quarantine_field(loop: str, item: str) -> str:
    """The quarantine hash's field of one loop's item."""
    return f"{loop}:{item}"


def _quarantine_entry(raw: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(raw).items()}


def _outcome(reply: Any) -> Outcome:
    parts = [reply_text(part) for part in reply]
    return Outcome(parts[0], parts[1] if len(parts) > 1 else None)


def dumps(value: Any) -> str:
    """Compact JSON, as results are stored."""
    return json.dumps(value, separators=(",", ":"))
