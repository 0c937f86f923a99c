"""The only module of the registry that talks to Redis; every key name is defined here.

Keys (under ``<prefix>:registry:``):

- ``site:<id>``, ``entry:<id>``, ``service:<code>`` - a record: ``{"state": <the upserted
  payload>, "retired": bool}`` as JSON. The state is exactly what the last event carried.
- ``sites``, ``entries``, ``services`` - sets of the ids, the index the lists are read from.
- ``audit:<kind>:<id>`` - a list of audit records (who, what, when), oldest first.
- ``generation`` - a counter every write increments; see below.

Every change is one optimistic transaction: WATCH the record and ``generation``, check the
version against the caller's ``If-Match``, validate (which reads other records: does the site
exist, is the name free there), then MULTI: record + index + audit + the event (built by
``events.py``) into the outbox + INCR generation, EXEC. Any other write in between makes EXEC
fail (WatchError) and the change is read and validated again, so neither two writers holding
the same version nor two creates of the same name at one site can both win. Registry writes
are few; serialising them costs nothing that matters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from services.contracts import CloudEvent
from services.contracts.payloads.base import Payload
from services.contracts.payloads.registry import EntryUpserted, ServiceUpserted, SiteUpserted
from services.plumbing.outbox import Outbox
from services.plumbing.redis_replies import reply_text
from services.plumbing.settings import HubSettings
from services.registry.events import record_event

# A write retried this often because others kept writing in between gives up with a 412.
_ATTEMPTS = 10

SERVICE = "registry"

SEED_ACTOR = "seed"
"""The audit ``actor`` of records the registry seeded itself: not a person."""


class Kind(StrEnum):
    """The three aggregates the registry owns; the value is the Redis key segment."""

    SITE = "site"
    ENTRY = "entry"
    SERVICE = "service"


@dataclass(frozen=True)
class _Spec:
    model: type[Payload]
    """The stored state: the upserted payload."""
    index: str
    """The key of the set of ids."""


SPECS: dict[Kind, _Spec] = {
    Kind.SITE: _Spec(SiteUpserted, "sites"),
    Kind.ENTRY: _Spec(EntryUpserted, "entries"),
    Kind.SERVICE: _Spec(ServiceUpserted, "services"),
}

StateT = TypeVar("StateT", bound=Payload)


class NotFound(Exception):
    """No record with that id."""


class AlreadyExists(Exception):
    """A create named an id that is taken."""


class StaleVersion(Exception):
    """The record is not at the version the caller based its change on."""

    def __init__(self, current: int | None) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


@dataclass(frozen=True)
class Record(Generic[StateT]):
    """A stored aggregate: its full state (the upserted payload) and whether it is retired."""

    state: StateT
    retired: bool = False

    @property
    def version(self) -> int:
        """The version of the state (every change raises it by one)."""
        return int(getattr(self.state, "version"))  # noqa: B009 - every upserted payload has it

    def dump(self) -> str:
        """The JSON stored in Redis."""
        return json.dumps({"state": self.state.model_dump(mode="json"), "retired": self.retired})


def _parse(kind: Kind, raw: bytes | str) -> Record[Any]:
    doc = json.loads(raw)
    return Record(SPECS[kind].model.model_validate(doc["state"]), bool(doc["retired"]))


def _changed(before: BaseModel | None, after: BaseModel) -> list[str]:
    if before is None:
        return sorted(k for k in type(after).model_fields if k != "version")
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return sorted(k for k in new if k != "version" and old.get(k) != new[k])


Change = Callable[[Record[Any] | None], Awaitable[Record[Any]]]
"""Builds the new record from the current one (None on create); may raise to refuse."""


class RegistryStore:
    """Sites, entries and catalogue services in Redis, each change with its audit and event."""

    def __init__(self, redis: Redis, settings: HubSettings, outbox: Outbox, source: str) -> None:
        self.redis = redis
        self.settings = settings
        self.outbox = outbox
        self.source = source

    def _key(self, *parts: str) -> str:
        return self.settings.key(SERVICE, *parts)

    def record_key(self, kind: Kind, agg_id: str) -> str:
        """The key of one record."""
        return self._key(kind.value, agg_id)

    def index_key(self, kind: Kind) -> str:
        """The set of ids of a kind."""
        return self._key(SPECS[kind].index)

    @property
    def generation_key(self) -> str:
        """The counter every write increments, so validations can WATCH the whole registry."""
        return self._key("generation")

    def audit_key(self, kind: Kind, agg_id: str) -> str:
        """The audit list of one record."""
        return self._key("audit", kind.value, agg_id)

    async def get(self, kind: Kind, agg_id: str) -> Record[Any] | None:
        """One record, or None."""
        raw = await self.redis.get(self.record_key(kind, agg_id))
        return _parse(kind, raw) if raw is not None else None

    async def all(self, kind: Kind) -> list[Record[Any]]:
        """Every record of a kind, retired ones included, sorted by id.

        The catalogue is small (hundreds of records), so reading it whole and filtering in
        Python is simpler than keeping secondary indexes consistent.
        """
        members = await self.redis.smembers(self.index_key(kind))
        ids = sorted(reply_text(m) for m in members)
        if not ids:
            return []
        raws = await self.redis.mget([self.record_key(kind, i) for i in ids])
        return [_parse(kind, raw) for raw in raws if raw is not None]

    async def audit(self, kind: Kind, agg_id: str) -> list[dict[str, Any]]:
        """The audit trail of one record, oldest first."""
        raws = await self.redis.lrange(self.audit_key(kind, agg_id), 0, -1)
        return [json.loads(raw) for raw in raws]

    async def is_empty(self) -> bool:
        """True when no record of any kind exists."""
        counts = [await self.redis.scard(self.index_key(kind)) for kind in Kind]
        return not any(counts)

    def _event(self, record: Record[Any]) -> CloudEvent[Any]:
        return record_event(record.state, record.retired, self.source)

    async def save(
        self,
        kind: Kind,
        agg_id: str,
        change: Change,
        *,
        actor: str,
        action: str,
        expected_version: int | None,
    ) -> Record[Any]:
        """Apply ``change`` atomically: record, index, audit and event in one MULTI/EXEC.

        ``expected_version`` None means create (the id must be free, else
        :class:`AlreadyExists`); otherwise the record must exist (:class:`NotFound`) at exactly
        that version (:class:`StaleVersion`, also when a concurrent writer gets in first).
        """
        key = self.record_key(kind, agg_id)
        for _ in range(_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key, self.generation_key)
                    raw = await pipe.get(key)
                    current = _parse(kind, raw) if raw is not None else None
                    if expected_version is None:
                        if current is not None:
                            raise AlreadyExists(agg_id)
                    elif current is None:
                        raise NotFound(agg_id)
                    elif current.version != expected_version:
                        raise StaleVersion(current.version)
                    new = await change(current)
                    audit = {
                        "at": dt.datetime.now(dt.UTC).isoformat(),
                        "actor": actor,
                        "action": action,
                        "version": new.version,
                        "changed": _changed(current.state if current else None, new.state),
                    }
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, new.dump())
                    pipe.sadd(self.index_key(kind), agg_id)
                    pipe.rpush(self.audit_key(kind, agg_id), json.dumps(audit))
                    self.outbox.stage(pipe, self._event(new))
                    pipe.incr(self.generation_key)
                    await pipe.execute()
                    return new
                except WatchError:
                    continue  # something changed meanwhile: read and validate again
        raise StaleVersion(None)

    async def save_many(
        self, changes: Sequence[tuple[Kind, Record[Any], int | None]], *, actor: str, action: str
    ) -> None:
        """Apply several planned changes in one transaction, all or nothing.

        Each change names the version it replaces (None: the record must not exist). If any
        record is not at that version, or changes before EXEC, nothing is written and
        :class:`StaleVersion` is raised.
        """
        keys = [self.record_key(kind, record.state.aggregate_id) for kind, record, _ in changes]
        if not keys:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*keys, self.generation_key)
                raws = await pipe.mget(keys)
                befores: list[Record[Any] | None] = []
                for (kind, _, expected), raw in zip(changes, raws, strict=True):
                    before = _parse(kind, raw) if raw is not None else None
                    if (before.version if before is not None else None) != expected:
                        raise StaleVersion(before.version if before is not None else None)
                    befores.append(before)
                pipe.multi()  # type: ignore[no-untyped-call]
                at = dt.datetime.now(dt.UTC).isoformat()
                for (kind, record, _), key, before in zip(changes, keys, befores, strict=True):
                    agg_id = record.state.aggregate_id
                    audit = {
                        "at": at,
                        "actor": actor,
                        "action": action,
                        "version": record.version,
                        "changed": _changed(before.state if before else None, record.state),
                    }
                    pipe.set(key, record.dump())
                    pipe.sadd(self.index_key(kind), agg_id)
                    pipe.rpush(self.audit_key(kind, agg_id), json.dumps(audit))
                    self.outbox.stage(pipe, self._event(record))
                pipe.incr(self.generation_key)
                await pipe.execute()
            except WatchError:
                raise StaleVersion(None) from None

    async def seed_if_empty(
        self, records: Sequence[tuple[Kind, Record[Any]]], actor: str = SEED_ACTOR
    ) -> bool:
        """Write ``records`` (with audit and events) in one transaction if the store is empty.

        The index sets are WATCHed: when two replicas start together, the second one's EXEC
        fails because the first one filled them, so the data is seeded exactly once.
        Returns whether this call seeded.
        """
        indexes = [self.index_key(kind) for kind in Kind]
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*indexes)
                for index in indexes:
                    if await pipe.scard(index):
                        return False
                pipe.multi()  # type: ignore[no-untyped-call]
                at = dt.datetime.now(dt.UTC).isoformat()
                for kind, record in records:
                    agg_id = record.state.aggregate_id
                    pipe.set(self.record_key(kind, agg_id), record.dump())
                    pipe.sadd(self.index_key(kind), agg_id)
                    audit = {
                        "at": at,
                        "actor": actor,
                        "action": "seeded",
                        "version": record.version,
                        "changed": _changed(None, record.state),
                    }
                    pipe.rpush(self.audit_key(kind, agg_id), json.dumps(audit))
                    self.outbox.stage(pipe, self._event(record))
                pipe.incr(self.generation_key)
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def replay(self, batch: int = 200) -> int:
        """Re-publish the current state of every record through the outbox (new event ids).

        Services first, then sites, then entries, so a fresh consumer meets what an entry
        refers to before the entry. Returns how many events were staged.
        """
        events: list[CloudEvent[Any]] = []
        for kind in (Kind.SERVICE, Kind.SITE, Kind.ENTRY):
            events.extend(self._event(record) for record in await self.all(kind))
        for start in range(0, len(events), batch):
            await self.outbox.publish(*events[start : start + batch])
        return len(events)
