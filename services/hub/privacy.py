"""``kanalhub privacy pseudonymise``: replace raw subjects stored before pseudonymous ids.

Since issue 19 every service stores a person as ``Principal.actor`` (``p-`` + 16 hex digits,
services/plumbing/pseudonyms.py). Records written before that may still hold a token's raw
``sub`` - an e-mail address, an employee number. This command finds every stored person id
and replaces each one that is not a pseudonymous id with ``pseudonymous_id(subject_key, value)``
- the id the same person gets today, so their old and new records still read as one person.

Where people are stored (the stores' own key functions name the keys; no key is spelt here):

| kind | store and key | field |
|---|---|---|
| registry audit | ``RegistryStore.audit_key(kind, id)``, a list of JSON records | ``actor`` |
| mobile visit | ``StoreKeys.visit_key(id)``, JSON | ``history[].by``, ``override.by`` |
| mobile series | ``StoreKeys.series_key(id)``, JSON | ``revisions[].by`` |
| kvik kiosk audit | ``KvikStore.kiosk_audit_key(id)``, a list of JSON records | ``actor`` |
| kvik help request | ``KvikStore.help_key(id)``, a hash | ``staff`` (once taken) |

Each record (a key) is rewritten on its own, atomically: WATCH the key, read it, MULTI, write
only the values that change, EXEC; a service writing the same key meanwhile makes EXEC fail and
the record is read again. Running the command twice changes nothing the second time (a
pseudonymous id is left as it is), so it can be stopped and run again. A record that cannot be
read (not JSON, another type) is left as it is and counted as skipped: one bad record does not
stop the others. ``--dry-run`` reads and counts, and writes nothing.

The hub is the composition root, so this module may import each service's store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, Final

from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import ResponseError, WatchError

from services.kvik.store import SERVICE as KVIK
from services.kvik.store import KvikStore
from services.mobile.store import StoreKeys as MobileKeys
from services.plumbing.outbox import Outbox
from services.plumbing.pseudonyms import PSEUDONYM_PATTERN, pseudonymous_id
from services.plumbing.settings import HubSettings
from services.registry.store import SEED_ACTOR, Kind, RegistryStore
from services.registry.store import SERVICE as REGISTRY

_ATTEMPTS: Final = 10
"""A record a service keeps changing under us is tried this often, then skipped."""

_SCAN_COUNT: Final = 500
_SENTINEL: Final = "\x00"
_GLOB_SPECIAL: Final = re.compile(r"([*?\[\]\\])")


class RecordKind(StrEnum):
    """The kinds of record that store a person's id; the value is what the summary shows."""

    REGISTRY_AUDIT = "registry audit trails"
    MOBILE_VISIT = "mobile visits"
    MOBILE_SERIES = "mobile series"
    KVIK_KIOSK_AUDIT = "kvik kiosk audit trails"
    KVIK_HELP = "kvik help requests"


@dataclass
class Tally:
    """What the command found of one kind."""

    scanned: int = 0
    """Records (keys) read."""
    changed: int = 0
    """Records with at least one raw subject (rewritten, unless a dry run)."""
    replaced: int = 0
    """Person ids replaced (or, in a dry run, that would be)."""
    skipped: int = 0
    """Records left as they are because they could not be read, or kept changing."""


Progress = Callable[[RecordKind, int, int], None]
"""Called with (kind, records done, records of that kind) as the command goes."""


class _Subjects:
    """Turns stored person ids into pseudonymous ids, counting how many it replaced."""

    def __init__(self, key: SecretStr, not_people: frozenset[str] = frozenset()) -> None:
        self._key = key
        self._not_people = not_people
        self.replaced = 0

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or PSEUDONYM_PATTERN.fullmatch(value):
            return value
        if value in self._not_people:
            return value
        self.replaced += 1
        return pseudonymous_id(self._key, value)


class _Unreadable(Exception):
    """A record is not in the shape its store writes: leave it alone."""


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Unreadable() from None


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise _Unreadable()
    return doc


def _rewrite_actor(doc: Any, subjects: _Subjects) -> dict[str, Any]:
    """An audit record (registry or kiosk) with its ``actor`` pseudonymised."""
    record = _object(doc)
    if "actor" in record:
        record["actor"] = subjects(record["actor"])
    return record


def _rewrite_visit(doc: Any, subjects: _Subjects) -> dict[str, Any]:
    """A visit with ``history[].by`` and ``override.by`` pseudonymised."""
    visit = _object(doc)
    for entry in visit.get("history") or ():
        if isinstance(entry, dict) and "by" in entry:
            entry["by"] = subjects(entry["by"])
    override = visit.get("override")
    if isinstance(override, dict) and "by" in override:
        override["by"] = subjects(override["by"])
    return visit


def _rewrite_series(doc: Any, subjects: _Subjects) -> dict[str, Any]:
    """A series with ``revisions[].by`` pseudonymised."""
    series = _object(doc)
    for revision in series.get("revisions") or ():
        if isinstance(revision, dict) and "by" in revision:
            revision["by"] = subjects(revision["by"])
    return series


def _compact(doc: Any) -> str:
    """As pydantic's ``model_dump_json`` writes (the mobile store and the kiosk audit)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _spaced(doc: Any) -> str:
    """As ``json.dumps`` writes by default (the registry's audit records)."""
    return json.dumps(doc)


def _pattern(key_of: Callable[[str], str]) -> str:
    """A SCAN pattern matching every key ``key_of`` makes, whatever the prefix holds."""
    escaped = _GLOB_SPECIAL.sub(r"\\\1", key_of(_SENTINEL))
    return escaped.replace(_SENTINEL, "*")


async def _keys(redis: Redis, patterns: Sequence[str]) -> list[bytes]:
    found: set[bytes] = set()
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
            found.add(key if isinstance(key, bytes) else str(key).encode())
    return sorted(found)


Rewrite = Callable[[Any, _Subjects], dict[str, Any]]


@dataclass(frozen=True)
class _Target:
    """One kind of record: where its keys are, how it is stored and how it is rewritten."""

    kind: RecordKind
    patterns: tuple[str, ...]
    shape: str
    """``json`` (a string), ``list`` (of JSON records) or ``hash-field`` (``field``)."""
    rewrite: Rewrite | None = None
    dump: Callable[[Any], str] = _compact
    field: str = ""
    not_people: frozenset[str] = frozenset()


def _targets(redis: Redis, hub: HubSettings) -> list[_Target]:
    registry = RegistryStore(redis, hub, Outbox(redis, hub, REGISTRY), f"/kanalhub/{REGISTRY}")
    mobile = MobileKeys(hub)
    kvik = KvikStore(redis, hub, Outbox(redis, hub, KVIK))
    return [
        _Target(
            RecordKind.REGISTRY_AUDIT,
            tuple(_pattern(partial(registry.audit_key, kind)) for kind in Kind),
            "list",
            _rewrite_actor,
            _spaced,
            # The registry's own seed records name no person.
            not_people=frozenset({SEED_ACTOR}),
        ),
        _Target(RecordKind.MOBILE_VISIT, (_pattern(mobile.visit_key),), "json", _rewrite_visit),
        _Target(RecordKind.MOBILE_SERIES, (_pattern(mobile.series_key),), "json", _rewrite_series),
        _Target(
            RecordKind.KVIK_KIOSK_AUDIT, (_pattern(kvik.kiosk_audit_key),), "list", _rewrite_actor
        ),
        _Target(RecordKind.KVIK_HELP, (_pattern(kvik.help_key),), "hash-field", field="staff"),
    ]


async def _one_record(
    redis: Redis, target: _Target, key: bytes, subject_key: SecretStr, dry_run: bool
) -> int:
    """Pseudonymise one record atomically; the number of ids replaced (0: nothing to do).

    Raises :class:`_Unreadable` for a record not in its store's shape, :class:`WatchError`
    when it kept changing.
    """
    for attempt in range(_ATTEMPTS):
        subjects = _Subjects(subject_key, target.not_people)
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                writes = await _planned_writes(pipe, target, key, subjects)
                if not subjects.replaced or dry_run:
                    return subjects.replaced
                pipe.multi()  # type: ignore[no-untyped-call]
                for write in writes:
                    write(pipe)
                await pipe.execute()
                return subjects.replaced
            except WatchError:
                if attempt == _ATTEMPTS - 1:
                    raise
            except ResponseError:
                # WRONGTYPE: a key of another shape under the same name pattern.
                raise _Unreadable() from None
    raise AssertionError("unreachable")


def _lset(key: bytes, index: int, value: str) -> Callable[[Any], Any]:
    return lambda pipe: pipe.lset(key, index, value)


async def _planned_writes(
    pipe: Any, target: _Target, key: bytes, subjects: _Subjects
) -> list[Callable[[Any], Any]]:
    """Read the record (in WATCH mode) and return the writes that pseudonymise it."""
    if target.shape == "json":
        raw = await pipe.get(key)
        if raw is None:
            return []  # gone since the scan
        assert target.rewrite is not None
        new = target.dump(target.rewrite(_json(raw), subjects))
        return [lambda p: p.set(key, new, keepttl=True)]
    if target.shape == "list":
        assert target.rewrite is not None
        writes: list[Callable[[Any], Any]] = []
        for index, raw in enumerate(await pipe.lrange(key, 0, -1)):
            before = subjects.replaced
            new = target.dump(target.rewrite(_json(raw), subjects))
            if subjects.replaced != before:
                writes.append(_lset(key, index, new))
        return writes
    raw = await pipe.hget(key, target.field)
    if raw is None:
        return []  # a request nobody took yet
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    new_value = subjects(value)
    return [lambda p: p.hset(key, target.field, new_value)]


async def pseudonymise(
    redis: Redis,
    hub: HubSettings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[RecordKind, Tally]:
    """Replace every stored person id that is not a pseudonymous id (see the module
    docstring); with ``dry_run`` only count. Returns what was found, per kind."""
    summary: dict[RecordKind, Tally] = {}
    for target in _targets(redis, hub):
        tally = summary.setdefault(target.kind, Tally())
        keys = await _keys(redis, target.patterns)
        if progress is not None:
            progress(target.kind, 0, len(keys))
        for done, key in enumerate(keys, start=1):
            tally.scanned += 1
            try:
                replaced = await _one_record(redis, target, key, hub.subject_key, dry_run)
            except (_Unreadable, WatchError):
                tally.skipped += 1
            else:
                if replaced:
                    tally.changed += 1
                    tally.replaced += replaced
            if progress is not None:
                progress(target.kind, done, len(keys))
    return summary


async def pseudonymise_configured(
    *, dry_run: bool, progress: Progress | None = None
) -> dict[RecordKind, Tally]:
    """:func:`pseudonymise` on the hub's configured Redis and subject key
    (``KANALHUB_REDIS_URL``, ``KANALHUB_SUBJECT_KEY``, ``KANALHUB_KEY_PREFIX``)."""
    hub = HubSettings()
    redis = Redis.from_url(
        hub.redis_url,
        socket_timeout=hub.redis_timeout_seconds,
        socket_connect_timeout=hub.redis_timeout_seconds,
    )
    try:
        return await pseudonymise(redis, hub, dry_run=dry_run, progress=progress)
    finally:
        await redis.aclose()
