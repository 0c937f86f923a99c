"""The only module of the mobile service that talks to Redis; every key name is defined here.

Keys (under ``<prefix>:mobile:``):

- Registry copy, from registry events: ``site:<id>``, ``entry:<id>`` (``{"state", "retired"}``
  JSON, the newest version seen), ``sites`` (set), ``site-entries:<site_id>`` (set of entry ids).
- ``share:<district>`` - the newest ``DistrictShareChanged`` payload of the metrics service.
- ``visit:<id>`` - a visit (JSON, :class:`~services.mobile.domain.Visit`).
- ``busy:staff:<id>``, ``busy:kit:<id>`` - sorted sets (score = start, epoch seconds) of the
  visits that hold a staff member or a kit; cancelled visits leave them.
- ``cal:staff:<id>``, ``cal:place:<id>``, ``cal:district:<d>`` - sorted sets of every visit,
  cancelled ones included, for calendars and "time since the last visit".
- ``places`` (set), ``place:<id>`` - every place a visit went to (JSON).
- ``series:<id>`` - a recurring series (JSON).
- ``contacts:<visit_id>`` - hash contact id -> contact JSON.
- ``bookings:<visit_id>`` - hash booking reference -> slot number.
- ``calendar-link:<staff_id>`` - the generation of a staff member's secret calendar address
  (an integer, absent = 0); rotating the link increments it (``calendar_links.py``).

Every change of visits is one optimistic transaction (:meth:`MobileStore.commit`): WATCH the
visits, read them, let the caller decide the new states, WATCH the staff and kit sets they
touch, read the visits in those sets near the new windows, check for collisions, then MULTI:
visits + indexes + outbox events, EXEC. A concurrent plan for the same staff or kit changes a
watched set, so EXEC fails and the change is read and checked again: two conflicting plans can
never both be stored. Every write to a busy set removes and re-adds its member, so even a
write that leaves a set as it was trips the other writers' WATCH.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services.contracts import CloudEvent
from services.contracts.payloads.contacts import DistrictShareChanged
from services.contracts.payloads.registry import EntryUpserted, SiteUpserted
from services.contracts.reference import District
from services.mobile import domain
from services.mobile.domain import ContactRecord, Place, Series, Visit
from services.plumbing.outbox import Outbox
from services.plumbing.redis_replies import reply_text
from services.plumbing.settings import HubSettings

SERVICE = "mobile"

# Writers retry this often when others keep changing what they watch; then 503-ish refusal.
_ATTEMPTS = 25


class Contended(Exception):
    """The change lost the race too often; nothing was written."""


class VisitConflict(Exception):
    """A visit being saved collides with another one; nothing was written."""

    def __init__(self, conflict: domain.Conflict) -> None:
        super().__init__(conflict.describe())
        self.conflict = conflict


@dataclass
class Change:
    """What a decision wants written: visits (new states), their events, a series."""

    visits: list[Visit] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)
    series: Series | None = None


Decide = Callable[[dict[str, Visit | None], Series | None], Change]
"""Builds the change from the current visits (None: no such visit) and series; may raise."""


def _epoch(when: dt.datetime) -> float:
    return when.timestamp()


class StoreKeys:
    """Every key name of the mobile service, under the hub's prefix."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings

    # --- key names -------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        """A key of this service."""
        return self.settings.key(SERVICE, *parts)

    def visit_key(self, visit_id: str) -> str:
        """The key of one visit."""
        return self.key("visit", visit_id)

    def busy_key(self, kind: str, resource_id: str) -> str:
        """The sorted set of visits holding a staff member (``staff``) or a kit (``kit``)."""
        return self.key("busy", kind, resource_id)

    def calendar_key(self, kind: str, target: str) -> str:
        """The sorted set of every visit of a staff member, place or district."""
        return self.key("cal", kind, target)

    def series_key(self, series_id: str) -> str:
        """The key of one series."""
        return self.key("series", series_id)

    def contacts_key(self, visit_id: str) -> str:
        """The hash of a visit's contacts."""
        return self.key("contacts", visit_id)

    def bookings_key(self, visit_id: str) -> str:
        """The hash of a visit's bookings (reference -> slot)."""
        return self.key("bookings", visit_id)

    def calendar_link_key(self, staff_id: str) -> str:
        """The generation of a staff member's secret calendar address."""
        return self.key("calendar-link", staff_id)


class RegistryCopy(StoreKeys):
    """Keeps the service's copy of registry sites and entries and the districts' shares,
    from events: each method reads with ``redis`` and queues its writes on ``pipe``."""

    async def _version(self, redis: Redis, key: str) -> int | None:
        raw = await redis.get(key)
        return None if raw is None else int(json.loads(raw)["version"])

    async def apply_site(
        self, pipe: Pipeline, redis: Redis, state: dict[str, Any], retired: bool
    ) -> None:
        """Queue a site's newest state; an older or repeated version is dropped."""
        key = self.key("site", str(state["site_id"]))
        current = await self._version(redis, key)
        if current is not None and current >= int(state["version"]):
            return
        doc = {"state": state, "retired": retired, "version": state["version"]}
        if retired and current is not None:
            old = json.loads(await redis.get(key) or "{}")
            doc["state"] = {**old.get("state", {}), "version": state["version"]}
        pipe.set(key, json.dumps(doc))
        pipe.sadd(self.key("sites"), str(state["site_id"]))

    async def apply_entry(
        self, pipe: Pipeline, redis: Redis, state: dict[str, Any], retired: bool
    ) -> None:
        """Queue an entry's newest state and keep the per-site index right."""
        entry_id = str(state["entry_id"])
        key = self.key("entry", entry_id)
        raw = await redis.get(key)
        old = json.loads(raw) if raw is not None else None
        if old is not None and int(old["version"]) >= int(state["version"]):
            return
        if retired:
            state = {**(old["state"] if old else {}), "version": state["version"]}
        old_site = old["state"].get("site_id") if old else None
        new_site = state.get("site_id")
        if old_site and (old_site != new_site or retired):
            pipe.srem(self.key("site-entries", old_site), entry_id)
        if new_site and not retired:
            pipe.sadd(self.key("site-entries", new_site), entry_id)
        pipe.set(key, json.dumps({"state": state, "retired": retired, "version": state["version"]}))

    async def apply_share(self, pipe: Pipeline, redis: Redis, share: DistrictShareChanged) -> None:
        """Queue a district's share unless a newer one is stored already."""
        key = self.key("share", share.district.value)
        raw = await redis.get(key)
        if raw is not None:
            old = DistrictShareChanged.model_validate_json(raw)
            if (old.last_day, old.computed_at) >= (share.last_day, share.computed_at):
                return
        pipe.set(key, share.model_dump_json())


class MobileStore(RegistryCopy):
    """Visits, bookings, contacts and the mobile service's copy of registry and share data."""

    def __init__(
        self,
        redis: Redis,
        settings: HubSettings,
        outbox: Outbox,
        rule: domain.TravelRule,
        source: str,
    ) -> None:
        super().__init__(settings)
        self.redis = redis
        self.outbox = outbox
        self.rule = rule
        self.source = source
        """The CloudEvents source of the events this store stages."""

    # --- registry copy and shares ----------------------------------------------------------

    async def site(self, site_id: str) -> SiteUpserted | None:
        """A live (not retired) site, or None."""
        raw = await self.redis.get(self.key("site", site_id))
        if raw is None:
            return None
        doc = json.loads(raw)
        return None if doc["retired"] else SiteUpserted.model_validate(doc["state"])

    async def sites(self) -> list[SiteUpserted]:
        """Every live site."""
        ids = sorted(reply_text(m) for m in await self.redis.smembers(self.key("sites")))
        if not ids:
            return []
        raws = await self.redis.mget([self.key("site", i) for i in ids])
        docs = [json.loads(raw) for raw in raws if raw is not None]
        return [SiteUpserted.model_validate(d["state"]) for d in docs if not d["retired"]]

    async def entries_at(self, site_id: str) -> list[EntryUpserted]:
        """The live entries located at a site."""
        ids = sorted(
            reply_text(m) for m in await self.redis.smembers(self.key("site-entries", site_id))
        )
        if not ids:
            return []
        raws = await self.redis.mget([self.key("entry", i) for i in ids])
        docs = [json.loads(raw) for raw in raws if raw is not None]
        return [EntryUpserted.model_validate(d["state"]) for d in docs if not d["retired"]]

    async def shares(self) -> dict[District, domain.Share]:
        """The newest known share of every district that has one."""
        districts = list(District)
        raws = await self.redis.mget([self.key("share", d.value) for d in districts])
        found = {}
        for district, raw in zip(districts, raws, strict=True):
            if raw is not None:
                s = DistrictShareChanged.model_validate_json(raw)
                found[district] = domain.Share(s.share, s.window_days, s.last_day)
        return found

    # --- reads -----------------------------------------------------------------------------

    async def visit(self, visit_id: str) -> Visit | None:
        """One visit, or None."""
        raw = await self.redis.get(self.visit_key(visit_id))
        return Visit.model_validate_json(raw) if raw is not None else None

    async def visits(self, visit_ids: Iterable[str]) -> list[Visit]:
        """The visits that exist among ``visit_ids``, in that order."""
        ids = list(visit_ids)
        if not ids:
            return []
        raws = await self.redis.mget([self.visit_key(i) for i in ids])
        return [Visit.model_validate_json(raw) for raw in raws if raw is not None]

    async def calendar(
        self, kind: str, target: str, start: dt.datetime, end: dt.datetime
    ) -> list[Visit]:
        """Visits of a staff member / place / district starting in ``[start, end)``, by start."""
        ids = await self.redis.zrangebyscore(
            self.calendar_key(kind, target), _epoch(start), f"({_epoch(end)}"
        )
        return await self.visits(reply_text(i) for i in ids)

    async def last_visits(self, kind: str, targets: Iterable[str]) -> dict[str, dt.datetime]:
        """Per place or district, the start of its latest visit that was not cancelled."""
        found: dict[str, dt.datetime] = {}
        for target in targets:
            ids = await self.redis.zrevrange(self.calendar_key(kind, target), 0, 20)
            for visit in await self.visits(reply_text(i) for i in ids):
                if visit.blocks:
                    found[target] = visit.starts_at
                    break
        return found

    async def places(self) -> list[Place]:
        """Every place a visit went to."""
        ids = sorted(reply_text(m) for m in await self.redis.smembers(self.key("places")))
        if not ids:
            return []
        raws = await self.redis.mget([self.key("place", i) for i in ids])
        return [Place.model_validate_json(raw) for raw in raws if raw is not None]

    async def series(self, series_id: str) -> Series | None:
        """One series, or None."""
        raw = await self.redis.get(self.series_key(series_id))
        return Series.model_validate_json(raw) if raw is not None else None

    async def contacts(self, visit_id: str) -> list[ContactRecord]:
        """A visit's contacts, by time."""
        raws = await self.redis.hvals(self.contacts_key(visit_id))
        return sorted(
            (ContactRecord.model_validate_json(r) for r in raws), key=lambda c: (c.at, c.contact_id)
        )

    async def calendar_link_generation(self, staff_id: str) -> int:
        """The current generation of a staff member's calendar address (0 until rotated)."""
        raw = await self.redis.get(self.calendar_link_key(staff_id))
        return int(raw) if raw is not None else 0

    async def rotate_calendar_link(self, staff_id: str) -> int:
        """Start a new generation of a staff member's calendar address (every earlier address
        stops working at once) and return it."""
        return int(await self.redis.incr(self.calendar_link_key(staff_id)))

    async def bookings(self, visit_id: str) -> dict[str, int]:
        """A visit's bookings: reference -> slot."""
        raw = await self.redis.hgetall(self.bookings_key(visit_id))
        return {reply_text(k): int(v) for k, v in raw.items()}

    # --- visit changes ---------------------------------------------------------------------

    async def commit(
        self, visit_ids: Sequence[str], decide: Decide, *, series_id: str | None = None
    ) -> Change:
        """Apply ``decide`` atomically; see the module docstring.

        Raises :class:`VisitConflict` when a visit being saved collides with another one,
        :class:`Contended` when other writers kept winning, and whatever ``decide`` raises.
        """
        for _ in range(_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    return await self._attempt(pipe, visit_ids, decide, series_id)
                except WatchError:
                    continue  # someone changed what we read: read and check again
        raise Contended()

    async def _attempt(
        self,
        pipe: Pipeline,
        visit_ids: Sequence[str],
        decide: Decide,
        series_id: str | None,
    ) -> Change:
        keys = [self.visit_key(i) for i in visit_ids]
        if series_id is not None:
            keys.append(self.series_key(series_id))
        if keys:
            await pipe.watch(*keys)
        raws = await pipe.mget([self.visit_key(i) for i in visit_ids]) if visit_ids else []
        current = {
            i: (Visit.model_validate_json(r) if r is not None else None)
            for i, r in zip(visit_ids, raws, strict=True)
        }
        series = None
        if series_id is not None:
            raw = await pipe.get(self.series_key(series_id))
            series = Series.model_validate_json(raw) if raw is not None else None
        change = decide(current, series)
        saved = {v.visit_id for v in change.visits}
        before = {v.visit_id: v for v in await self._current_of(pipe, saved, current)}
        busy = {
            self.busy_key(kind, rid)
            for v in [*change.visits, *before.values()]
            for kind, rid in v.resources()
        }
        if busy:
            await pipe.watch(*busy)
        planned = [v for v in change.visits if v.blocks]
        if planned:
            conflict = domain.first_conflict(
                planned, await self._neighbours(pipe, planned, saved), self.rule
            )
            if conflict is not None:
                raise VisitConflict(conflict)
        pipe.multi()  # type: ignore[no-untyped-call]
        for visit in change.visits:
            self._write(pipe, before.get(visit.visit_id), visit)
        if change.series is not None:
            pipe.set(self.series_key(change.series.series_id), change.series.model_dump_json())
        for event in change.events:
            self.outbox.stage(pipe, event)
        await pipe.execute()
        return change

    async def _current_of(
        self, pipe: Pipeline, ids: set[str], known: dict[str, Visit | None]
    ) -> list[Visit]:
        # A decision may save visits it did not name up front (a series names them through
        # its record); WATCH and read those too, so their old indexes are cleaned up.
        missing = sorted(ids - set(known))
        if missing:
            await pipe.watch(*[self.visit_key(i) for i in missing])
            raws = await pipe.mget([self.visit_key(i) for i in missing])
            for visit_id, raw in zip(missing, raws, strict=True):
                known[visit_id] = Visit.model_validate_json(raw) if raw is not None else None
        return [v for i, v in known.items() if i in ids and v is not None]

    async def _neighbours(
        self, pipe: Pipeline, planned: Sequence[Visit], saved: set[str]
    ) -> list[Visit]:
        """Visits in the busy sets of ``planned`` that start near their windows."""
        margin = self.rule.search_margin
        ids: set[str] = set()
        for visit in planned:
            for kind, rid in visit.resources():
                found = await pipe.zrangebyscore(
                    self.busy_key(kind, rid),
                    _epoch(visit.starts_at - margin),
                    _epoch(visit.ends_at + margin),
                )
                ids.update(reply_text(i) for i in found)
        ids -= saved
        if not ids:
            return []
        raws = await pipe.mget([self.visit_key(i) for i in sorted(ids)])
        return [Visit.model_validate_json(r) for r in raws if r is not None]

    def _write(self, pipe: Pipeline, before: Visit | None, visit: Visit) -> None:
        vid = visit.visit_id
        if before is not None:
            for kind, rid in before.resources():
                pipe.zrem(self.busy_key(kind, rid), vid)
            for key in self._calendar_keys(before):
                pipe.zrem(key, vid)
        pipe.set(self.visit_key(vid), visit.model_dump_json())
        score = _epoch(visit.starts_at)
        if visit.blocks:
            for kind, rid in visit.resources():
                pipe.zadd(self.busy_key(kind, rid), {vid: score})
        for key in self._calendar_keys(visit):
            pipe.zadd(key, {vid: score})
        pipe.set(self.key("place", visit.place.place_id), visit.place.model_dump_json())
        pipe.sadd(self.key("places"), visit.place.place_id)

    def _calendar_keys(self, visit: Visit) -> list[str]:
        return [
            *(self.calendar_key("staff", s) for s in visit.staff),
            self.calendar_key("place", visit.place.place_id),
            self.calendar_key("district", visit.place.district.value),
        ]

    # --- contacts and bookings -------------------------------------------------------------

    async def record_contact(
        self,
        visit_id: str,
        decide: Callable[[Visit | None, ContactRecord | None], CloudEvent | None],
        contact: ContactRecord,
    ) -> bool:
        """Store ``contact`` and its event atomically, unless it is stored already.

        ``decide`` sees the visit and any contact stored under the same id; it raises to
        refuse, returns None for a repeat (nothing written) or the event to publish.
        Returns whether the contact was stored now.
        """
        key = self.contacts_key(visit_id)
        for _ in range(_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.visit_key(visit_id), key)
                    raw_visit = await pipe.get(self.visit_key(visit_id))
                    raw = await pipe.hget(key, contact.contact_id)
                    visit = Visit.model_validate_json(raw_visit) if raw_visit else None
                    existing = ContactRecord.model_validate_json(raw) if raw else None
                    event = decide(visit, existing)
                    if event is None:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, contact.contact_id, contact.model_dump_json())
                    self.outbox.stage(pipe, event)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        raise Contended()

    async def book(
        self, visit_id: str, decide: Callable[[Visit | None, dict[str, int]], int | None], ref: str
    ) -> int:
        """Book ``ref`` into the slot ``decide`` picks from the visit and its bookings.

        ``decide`` raises to refuse and returns None when ``ref`` is booked already (its slot
        is returned, nothing written). Concurrent bookings of one visit serialise on WATCH, so
        a slot is never given twice.
        """
        key = self.bookings_key(visit_id)
        for _ in range(_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.visit_key(visit_id), key)
                    raw_visit = await pipe.get(self.visit_key(visit_id))
                    raw = await pipe.hgetall(key)
                    bookings = {reply_text(k): int(v) for k, v in raw.items()}
                    visit = Visit.model_validate_json(raw_visit) if raw_visit else None
                    slot = decide(visit, bookings)
                    if slot is None:
                        return bookings[ref]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, ref, slot)
                    await pipe.execute()
                    return slot
                except WatchError:
                    continue
        raise Contended()

    async def unbook(self, visit_id: str, ref: str) -> bool:
        """Free a booking's slot; False when there was no such booking."""
        return bool(await self.redis.hdel(self.bookings_key(visit_id), ref))
