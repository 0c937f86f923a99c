"""The only module of the metrics service that talks to Redis; every key name is defined here.

All keys live under the hub's key prefix and ``metrics:``. Their number and size grow with days
x districts x channels x modes x services (and kiosks, visits and entries), never with the
number of events; only the consumer's dedupe marks (``metrics:seen:<event id>``) grow with
events, and those expire after the dedupe window.

Contacts, rolled up three ways so that any period is a handful of reads:

- ``cells:<period>:<name>`` - hash, field ``district|channel|mode|service`` -> contacts, for
  the periods day (``cells:day:2024-01-15``), ISO week (``cells:week:2024-W03``) and month
  (``cells:month:2024-01``);
- ``mix:<period>:<name>`` - the same without the service (``district|channel|mode``), for the
  questions over all services (most of them), 15 times smaller;
- ``totals`` - ``district|channel|mode`` -> contacts since the beginning (Prometheus counters).

KVIK, mobile and registry figures:

- ``abandoned:<day>`` - ``district|service`` -> abandoned KVIK sessions;
- ``kvik:sessions`` - ``district|outcome|help`` -> sessions since the beginning;
- ``kvik:help:<day>`` - ``district|channel|requested|answered|wait_ms`` fields -> counts;
- ``kvik:help:requests`` - ``district|channel`` -> help requests since the beginning;
- ``kvik:help:wait`` - ``channel|<le>``, ``channel|sum``, ``channel|count``: the histogram of
  time to help;
- ``kiosks`` - kiosk id -> ``state|entry|district`` (state registered, online or offline);
- ``mobile:visits`` - visit id -> its last state, so re-published states count once;
- ``mobile:totals`` - ``district|planned|completed|cancelled|onboarded|staffed_seconds``;
- ``mobile:day:<day>`` - ``district|completed|contacts|onboarded|staffed_seconds`` for a day;
- ``entries`` - registry entry id -> the entry's last ``entry.upserted`` payload as JSON, with
  ``"retired": true`` and status ``closed`` once retired (an older version never overwrites a
  newer one: ``plumbing.registry_copy``);
- ``sites`` - registry site id -> the site's last ``site.upserted`` payload as JSON (same rule);
- ``catalogue`` - service code -> ``active|general``, ``active|special``, ``retired|general`` or
  ``retired|special`` (from the registry: whether it is offered, and its needs group);
- ``report:<day>`` - ``source|district|service`` -> ``self_service,assisted`` of the last
  external report with that key (for replace semantics);
- ``share:published`` - district -> the share of its last district-share event (``0.1234`` or
  ``none``); ``share:lock:<district>`` - string, the per-district lock of those events (expires
  after ``share_event_interval_seconds``).

Usage per building and entry point (every place-bound contact: KVIK, counter, mobile):

- ``usage:cells:<period>:<name>`` - hash, field ``district|entry|site|channel|mode|service`` ->
  contacts, for the same days, ISO weeks and months as ``cells``; ``entry`` or ``site`` is empty
  when the event does not name it (a KVIK session names only its entry: its site is the entry's
  site in the registry copy, resolved when usage is read; a mobile visit at a site without a
  mobile-stop entry names only its site). About places x 3 channels x 2 modes x services
  fields per key (an entry has its one district and site, so they add no fields): for 200
  places and 40 services at most 48,000, in practice far fewer (an entry serves few channels);
- ``usage:mix:<period>:<name>`` - the same without the service, for the questions over all
  services (places x 3 x 2 fields);
- ``usage:totals`` - ``district|entry|site|channel|mode`` -> contacts since the beginning (the
  bounded Prometheus per-entry figure).

Desk tickets from the citizen-service centres' queue systems (``tickets`` has the rules):

- ``desk:day:<day>`` - hash, field ``entry|service|figure`` -> amount, figures ``served``,
  ``no_show``, ``wait|<bucket>``, ``wait_count``, ``wait_ms``, ``service|<bucket>``,
  ``service_count``, ``service_ms`` (buckets: ``tickets.WAIT_BUCKETS``/``SERVICE_BUCKETS`` and
  ``+Inf``; a ticket counts in its one bucket, not cumulatively); desk entries x services x 30
  fields per day, and a year is 365 keys;
- ``desk:totals`` - ``entry|figure`` -> since the beginning (Prometheus);
- ``desk:file:<day>`` - entry id -> the contribution of the entry's last day file as JSON
  ``[[key, field, amount], ...]`` (every rollup it moved, contacts and desk figures), so the
  next file of that entry and day takes exactly that back (replace semantics).

Not derived from the log, so not dropped or rebuilt by ``rebuild`` (intake's own memory):

- ``intake:desk:<entry>:<day>`` - string ``live`` or ``file``: which way the entry's tickets of
  that day came in; the other way is refused (they would count twice). Expires after the
  oldest day a file may be sent for (``desk_file_days`` + 1 days);
- ``redrive:<dead-letter topic>:<partition>`` - string, the offset ``kanalhub metrics
  redrive`` has gone through (so a redrive re-publishes each dead letter once);
- ``idem:desk%3A<entry>:<ticket id>`` - a live ticket's fingerprint and first answer
  (``plumbing.idempotency.IdempotencyStore``, scope ``desk:<entry>``), kept
  ``desk_live_days`` + 1 days: longer than the live feed takes a ticket, so a ticket can never
  be counted twice.

Writes are queued on the consumer's MULTI pipeline, so they commit with the dedupe mark; counter
changes are first summed over the transaction (``counts``, the transaction's ``counters``) and
applied by the consumer's commit script together with the dedupe marks, so a batch costs one
command however many events and fields it changes.
Scripts that read (a report's previous figure, a visit's previous state) run on the server
inside that transaction, in order, so two events for the same key in one batch see each other.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.contracts import (
    Administration,
    Channel,
    ContactMode,
    CountReported,
    District,
    EntryKind,
    EntryStatus,
    EntryUpserted,
    HelpChannel,
    OpeningHours,
    SiteUpserted,
)
from services.contracts.payloads.desk import DeskTicket
from services.metrics.domain import (
    Abandonment,
    CellKey,
    ContactCount,
    Period,
    local_day,
    period_name,
)
from services.metrics.tickets import figures_of
from services.plumbing.consumer import Transaction
from services.plumbing.redis_replies import reply_text
from services.plumbing.registry_copy import RegistryCopy
from services.plumbing.settings import HubSettings

SERVICE = "metrics"
SEP = "|"
ALL_SERVICES = ""
"""The service of a cell read from a ``mix`` rollup: the sum over all services."""

_ROLLUP_CACHE_DAYS = 4096
"""Days whose rollup key names a store keeps at most (about 11 years of backlog)."""

HELP_WAIT_BUCKETS: tuple[float, ...] = (15, 30, 60, 120, 300, 600, 1200, 1800)
"""Upper bounds (seconds) of the time-to-help histogram: a citizen waits seconds to minutes."""


def _script(name: str) -> str:
    """A Lua script of this store, from its file in ``lua/`` next to this module (what each
    one does, and its KEYS and ARGV, is in the file's opening comment)."""
    return (resources.files("services.metrics") / "lua" / name).read_text(encoding="utf-8")


_REPLACE_REPORT = _script("replace_report.lua")
_VISIT_STATE = _script("visit_state.lua")
_REPLACE_DESK_FILE = _script("replace_desk_file.lua")
_SUM_SERVICES = _script("sum_services.lua")
_RETIRE_SERVICE = _script("retire_service.lua")


def cell_field(cell: CellKey) -> str:
    """The hash field of one aggregate cell."""
    return SEP.join((cell.district, cell.channel, cell.mode, cell.service))


def mix_field(district: str, channel: str, mode: str) -> str:
    """The hash field of a cell summed over all services."""
    return SEP.join((district, channel, mode))


@functools.lru_cache(maxsize=65536)
def _parsed_cell(raw: bytes | str) -> CellKey:
    """``parse_cell_field``, remembered: the fields of the rollups are few (districts x channels
    x modes x catalogue services) and repeat in every hash a long read goes through."""
    return parse_cell_field(raw)


def parse_cell_field(raw: bytes | str) -> CellKey:
    """The cell a ``cells`` or ``mix`` hash field names (``mix``: service ``ALL_SERVICES``)."""
    parts = reply_text(raw).split(SEP)
    service = parts[3] if len(parts) == 4 else ALL_SERVICES
    return CellKey(District(parts[0]), Channel(parts[1]), ContactMode(parts[2]), service)


@dataclass(frozen=True)
class RegistryEntry:
    """What the metrics service keeps of a registry entry (its last upserted state)."""

    kind: EntryKind
    district: District | None
    status: EntryStatus
    site_id: str | None = None
    name: str = ""
    administration: Administration | None = None
    opening_hours: OpeningHours | None = None
    services: tuple[str, ...] = ()
    retired: bool = False
    staff_help: tuple[str, ...] = ()
    """How staff help citizens here (empty: self-service only). Staffed entries close on
    Danish public holidays (the registry's rule), self-service ones do not."""


@dataclass(frozen=True)
class RegistrySite:
    """What the metrics service keeps of a registry site (its last upserted state)."""

    name: str
    district: District
    owner: Administration
    latitude: float
    longitude: float
    retired: bool = False


@dataclass(frozen=True)
class KioskState:
    """The last known state of a kiosk."""

    state: str
    entry_id: str
    district: District


@dataclass(frozen=True)
class HelpWait:
    """The time-to-help histogram of one help channel (cumulative bucket counts)."""

    buckets: dict[float, int]
    count: int
    total_seconds: float


class MetricsStore:
    """Aggregates of contacts and the KVIK/mobile/registry figures, read by the API and the
    Prometheus exposition and written by the event handlers.

    Writes are queued on the caller's pipeline, reads take the client, so the handler table can
    be built before any connection exists.
    """

    def __init__(self, settings: HubSettings) -> None:
        self._settings = settings
        # day -> its (cells, mix) rollup keys per period: every contact of a day needs the same
        # six names, and building them (ISO week, joins) cost more than the counting itself.
        self._rollups: dict[dt.date, tuple[tuple[str, str], ...]] = {}
        # day -> its (usage cells, usage mix) keys per period, the same cache for usage.
        self._usage_rollups: dict[dt.date, tuple[tuple[str, str], ...]] = {}
        self._usage_totals = self.key("usage", "totals")
        # The registry copies: version-guarded by the plumbing's one registry-copy helper.
        self._entries = RegistryCopy(self.key("entries"))
        self._sites = RegistryCopy(self.key("sites"))

    def key(self, *parts: str) -> str:
        """A key of the metrics service."""
        return self._settings.key(SERVICE, *parts)

    def rollup_key(self, kind: str, period: Period, day: dt.date) -> str:
        """The ``cells`` or ``mix`` hash of the ``period`` containing ``day``."""
        return self.key(kind, period.value, period_name(period, day))

    def _rollup_keys(self, day: dt.date) -> tuple[tuple[str, str], ...]:
        """``(cells key, mix key)`` of each period containing ``day``, cached per day."""
        keys = self._rollups.get(day)
        if keys is None:
            if len(self._rollups) >= _ROLLUP_CACHE_DAYS:
                self._rollups.clear()  # a replay of many years: start over rather than grow
            keys = self._rollups[day] = tuple(
                (self.rollup_key("cells", period, day), self.rollup_key("mix", period, day))
                for period in Period
            )
        return keys

    def aggregate_patterns(self) -> list[str]:
        """Key patterns of everything the events built (for ``rebuild``); not the outbox."""
        return [
            self.key(name)
            for name in (
                "cells:*",
                "mix:*",
                "totals",
                "abandoned:*",
                "kvik:*",
                "kiosks",
                "mobile:*",
                "entries",
                "sites",
                "catalogue",
                "report:*",
                "usage:*",
                "desk:*",
                "seen:*",
                "share:*",
            )
        ]

    # -- writes, queued on a MULTI pipeline ----------------------------------------------------

    def counts(self, tx: Transaction) -> Counts:
        """The transaction's counter changes, summed over its events and applied by the
        consumer's commit script with the dedupe marks (a batch's 500 increments of one field
        become one increment by 500)."""
        return tx.counters

    def add_contacts(self, counts: Counts, contacts: Iterable[ContactCount]) -> None:
        """Count ``contacts`` in every rollup."""
        totals = self.key("totals")
        for contact in contacts:
            count = contact.count
            cell = SEP.join((contact.district, contact.channel, contact.mode, contact.service))
            mix = SEP.join((contact.district, contact.channel, contact.mode))
            for cells_key, mix_key in self._rollup_keys(contact.day):
                counts[(cells_key, cell)] += count
                counts[(mix_key, mix)] += count
            counts[(totals, mix)] += count
            if contact.entry_id is not None or contact.site_id is not None:
                self._add_usage(counts, contact)

    def usage_key(self, kind: str, period: Period, day: dt.date) -> str:
        """The ``usage:cells`` or ``usage:mix`` hash of the ``period`` containing ``day``."""
        return self.key("usage", kind, period.value, period_name(period, day))

    def _usage_keys(self, day: dt.date) -> tuple[tuple[str, str], ...]:
        """``(usage cells key, usage mix key)`` of each period containing ``day``, cached."""
        keys = self._usage_rollups.get(day)
        if keys is None:
            if len(self._usage_rollups) >= _ROLLUP_CACHE_DAYS:
                self._usage_rollups.clear()
            keys = self._usage_rollups[day] = tuple(
                (self.usage_key("cells", period, day), self.usage_key("mix", period, day))
                for period in Period
            )
        return keys

    def _add_usage(self, counts: Counts, contact: ContactCount) -> None:
        """Count a place-bound contact at its entry and/or site (summed with the batch's other
        counter changes, so no extra round trip)."""
        count = contact.count
        mix = (
            f"{contact.district}{SEP}{contact.entry_id or ''}{SEP}{contact.site_id or ''}"
            f"{SEP}{contact.channel}{SEP}{contact.mode}"
        )
        cell = f"{mix}{SEP}{contact.service}"
        for cells_key, mix_key in self._usage_keys(contact.day):
            counts[(cells_key, cell)] += count
            counts[(mix_key, mix)] += count
        counts[(self._usage_totals, mix)] += count

    def add_abandonment(self, counts: Counts, abandonment: Abandonment) -> None:
        """Count one abandoned session."""
        key = self.key("abandoned", abandonment.day.isoformat())
        counts[(key, SEP.join((abandonment.district, abandonment.service)))] += 1

    def add_session(self, counts: Counts, district: District, outcome: str, help: str) -> None:
        """Count one KVIK session by outcome and help (since the beginning)."""
        counts[(self.key("kvik", "sessions"), SEP.join((district, outcome, help)))] += 1

    def replace_report(self, pipe: Pipeline, report: CountReported) -> None:
        """When ``pipe`` executes: make ``report`` the figure for its key, moving every rollup
        by the difference to the report it replaces (see ``domain.report_change``)."""
        modes = (ContactMode.SELF_SERVICE, ContactMode.ASSISTED)
        cells = [
            cell_field(CellKey(report.district, report.channel, mode, report.service))
            for mode in modes
        ]
        mixes = [mix_field(report.district, report.channel, mode) for mode in modes]
        pipe.eval(
            _REPLACE_REPORT,
            8,
            self.key("report", report.day.isoformat()),
            *[self.rollup_key("cells", period, report.day) for period in Period],
            *[self.rollup_key("mix", period, report.day) for period in Period],
            self.key("totals"),
            SEP.join((report.source, report.district, report.service)),
            *cells,
            *mixes,
            str(report.self_service),
            str(report.assisted),
        )

    def add_help_request(
        self, counts: Counts, district: District, channel: HelpChannel, day: dt.date
    ) -> None:
        """Count one request for staff help."""
        counts[(self.key("kvik", "help", "requests"), SEP.join((district, channel)))] += 1
        day_key = self.key("kvik", "help", day.isoformat())
        counts[(day_key, SEP.join((district, channel, "requested")))] += 1

    def add_help_answer(
        self,
        pipe: Pipeline,
        counts: Counts,
        district: District,
        channel: HelpChannel,
        day: dt.date,
        wait_seconds: float,
    ) -> None:
        """Count one answered help request and how long the citizen waited."""
        wait_key = self.key("kvik", "help", "wait")
        for bound in HELP_WAIT_BUCKETS:
            if wait_seconds <= bound:
                counts[(wait_key, f"{channel}{SEP}{bound:g}")] += 1
        counts[(wait_key, f"{channel}{SEP}+Inf")] += 1
        counts[(wait_key, f"{channel}{SEP}count")] += 1
        pipe.hincrbyfloat(wait_key, f"{channel}{SEP}sum", wait_seconds)
        day_key = self.key("kvik", "help", day.isoformat())
        counts[(day_key, SEP.join((district, channel, "answered")))] += 1
        counts[(day_key, SEP.join((district, channel, "wait_ms")))] += round(wait_seconds * 1000)

    def set_kiosk(
        self, pipe: Pipeline, kiosk_id: str, state: str, entry_id: str, district: District
    ) -> None:
        """Remember a kiosk's last state (registered, online, offline)."""
        pipe.hset(self.key("kiosks"), kiosk_id, SEP.join((state, entry_id, district)))

    def visit_state(
        self,
        pipe: Pipeline,
        visit_id: str,
        state: str,
        district: District,
        day: dt.date,
        staffed_seconds: int = 0,
    ) -> None:
        """Count a visit's move to ``state`` once (planned, completed or cancelled)."""
        pipe.eval(
            _VISIT_STATE,
            3,
            self.key("mobile", "visits"),
            self.key("mobile", "totals"),
            self.key("mobile", "day", day.isoformat()),
            visit_id,
            state,
            district,
            str(staffed_seconds),
        )

    def add_mobile_contact(
        self, counts: Counts, district: District, day: dt.date, onboarded: bool
    ) -> None:
        """Count a mobile contact for utilisation, and a digital onboarding if there was one."""
        day_key = self.key("mobile", "day", day.isoformat())
        counts[(day_key, f"{district}{SEP}contacts")] += 1
        if onboarded:
            counts[(day_key, f"{district}{SEP}onboarded")] += 1
            counts[(self.key("mobile", "totals"), f"{district}{SEP}onboarded")] += 1

    def upsert_entry(self, pipe: Pipeline, entry: EntryUpserted) -> None:
        """Keep a registry entry's state, unless a newer version is already kept."""
        self._entries.upsert(pipe, entry.entry_id, entry.version, entry.model_dump_json())

    def retire_entry(self, pipe: Pipeline, entry_id: str, version: int) -> None:
        """Mark a registry entry retired and closed, keeping what it was."""
        self._entries.retire(pipe, entry_id, version, {"status": EntryStatus.CLOSED.value})

    def upsert_site(self, pipe: Pipeline, site: SiteUpserted) -> None:
        """Keep a registry site's state, unless a newer version is already kept."""
        self._sites.upsert(pipe, site.site_id, site.version, site.model_dump_json())

    def retire_site(self, pipe: Pipeline, site_id: str, version: int) -> None:
        """Mark a registry site retired, keeping what it was (history still names it)."""
        self._sites.retire(pipe, site_id, version)

    def set_service(self, pipe: Pipeline, code: str, general_needs: bool) -> None:
        """Keep a catalogue service as active (intake refuses other codes) with its needs
        group (general or special)."""
        state = SEP.join(("active", "general" if general_needs else "special"))
        pipe.hset(self.key("catalogue"), code, state)

    def retire_service(self, pipe: Pipeline, code: str) -> None:
        """Keep a catalogue service as retired, in the needs group it had (history keeps it)."""
        pipe.eval(_RETIRE_SERVICE, 1, self.key("catalogue"), code)

    # -- desk tickets --------------------------------------------------------------------------

    def add_desk_tickets(
        self, counts: Counts, entry_id: str, tickets: Iterable[DeskTicket]
    ) -> None:
        """Count ``tickets`` of ``entry_id`` in the desk figures of the day each ended on (the
        contacts they stand for are counted by ``add_contacts``)."""
        totals = self.key("desk", "totals")
        for ticket in tickets:
            day_key = self.key("desk", "day", local_day(ticket.ended_at).isoformat())
            prefix = SEP.join((entry_id, ticket.service))
            for figure, amount in figures_of(ticket):
                counts[(day_key, f"{prefix}{SEP}{figure}")] += amount
                counts[(totals, f"{entry_id}{SEP}{figure}")] += amount

    def replace_desk_file(
        self, pipe: Pipeline, entry_id: str, day: dt.date, contribution: Counts
    ) -> None:
        """When ``pipe`` executes: make ``contribution`` (every ``(key, field) -> amount`` a
        day file adds, built with ``add_contacts`` and ``add_desk_tickets``) the figure of
        ``entry_id`` and ``day``, taking back exactly what the entry's previous file of that
        day added. Runs on the server, in order with the transaction's other commands."""
        items = sorted(
            [key, name, amount] for (key, name), amount in contribution.items() if amount
        )
        pipe.eval(
            _REPLACE_DESK_FILE,
            1,
            self.key("desk", "file", day.isoformat()),
            entry_id,
            json.dumps(items, separators=(",", ":")),
        )

    def desk_intake_key(self, entry_id: str, day: dt.date) -> str:
        """Which way (``live`` or ``file``) the entry's tickets of ``day`` came in (intake)."""
        return self.key("intake", "desk", entry_id, day.isoformat())

    async def watch_desk_intake(self, pipe: Pipeline, entry_id: str, day: dt.date) -> str | None:
        """WATCH the way the entry's tickets of ``day`` came in and read it (``live``, ``file``,
        or None when none came in yet), on a transaction pipeline before its MULTI."""
        mark = self.desk_intake_key(entry_id, day)
        await pipe.watch(mark)
        first = await pipe.get(mark)
        return None if first is None else reply_text(first)

    def mark_desk_intake(
        self, pipe: Pipeline, entry_id: str, day: dt.date, way: str, ttl_seconds: int
    ) -> None:
        """Queue: the entry's tickets of ``day`` come in ``way``, remembered ``ttl_seconds``."""
        pipe.set(self.desk_intake_key(entry_id, day), way, ex=ttl_seconds)

    async def desk_days(
        self, redis: Redis, days: Sequence[dt.date]
    ) -> list[dict[tuple[str, str, str], int]]:
        """The desk figures of each of ``days``: ``(entry, service, figure) -> amount``."""
        keys = [self.key("desk", "day", d.isoformat()) for d in days]
        raw_days = await _hgetall_each(redis, keys)
        result: list[dict[tuple[str, str, str], int]] = []
        for raw in raw_days:
            figures: dict[tuple[str, str, str], int] = {}
            for key, value in raw.items():
                if value != b"0":  # a figure a replaced day file took back
                    entry_id, service, figure = reply_text(key).split(SEP, 2)
                    figures[(entry_id, service, figure)] = int(value)
            result.append(figures)
        return result

    async def desk_totals(self, redis: Redis) -> dict[tuple[str, str], int]:
        """The desk figures since the beginning: ``(entry, figure) -> amount``."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("desk", "totals"))
        result: dict[tuple[str, str], int] = {}
        for key, value in raw.items():
            entry_id, figure = reply_text(key).split(SEP, 1)
            result[(entry_id, figure)] = int(value)
        return result

    # -- the district-share events --------------------------------------------------------------

    async def published_share(self, redis: Redis, district: District) -> str | None:
        """The share last published for ``district`` (``0.1234`` or ``none``), if any."""
        raw = await redis.hget(self.key("share", "published"), district)
        return None if raw is None else reply_text(raw)

    async def claim_share_event(self, redis: Redis, district: District, lock_ms: int) -> bool:
        """Whether this replica may publish ``district``'s share now: the per-district lock,
        taken for ``lock_ms`` unless another replica holds it."""
        taken = await redis.set(self.key("share", "lock", district), b"1", nx=True, px=lock_ms)
        return bool(taken)

    def record_published_share(self, pipe: Pipeline, district: District, share: str) -> None:
        """Queue: ``share`` is the share last published for ``district``."""
        pipe.hset(self.key("share", "published"), district, share)

    # -- commands (rebuild, redrive) -----------------------------------------------------------

    async def drop_aggregates(self, redis: Redis) -> None:
        """Delete everything the events built (``aggregate_patterns``), before a rebuild."""
        for pattern in self.aggregate_patterns():
            async for key in redis.scan_iter(match=pattern, count=1000):
                await redis.unlink(key)

    async def redriven_up_to(self, redis: Redis, topic: str, partition: int) -> int:
        """The offset of the dead-letter partition that ``redrive`` has gone through."""
        return int(await redis.get(self.key("redrive", topic, str(partition))) or 0)

    async def set_redriven_up_to(
        self, redis: Redis, topic: str, partition: int, offset: int
    ) -> None:
        """Remember that ``redrive`` has gone through the partition up to ``offset``."""
        await redis.set(self.key("redrive", topic, str(partition)), offset)

    # -- reads ---------------------------------------------------------------------------------

    async def range_cells(
        self, redis: Redis, first: dt.date, last: dt.date, by_service: bool
    ) -> list[dict[CellKey, int]]:
        """The contacts from ``first`` to ``last`` (inclusive), as few rollups as cover it:
        whole months, then whole ISO weeks, then single days. ``by_service`` False reads the
        ``mix`` rollups (service ``ALL_SERVICES``)."""
        kind = "cells" if by_service else "mix"
        keys = [self.rollup_key(kind, period, day) for period, day in rollups_covering(first, last)]
        return await self._hashes_of_cells(redis, keys)

    async def period_cells(
        self, redis: Redis, period: Period, days: Sequence[dt.date], by_service: bool
    ) -> list[dict[CellKey, int]]:
        """The contacts of each ``period`` containing one of ``days`` (one round trip)."""
        kind = "cells" if by_service else "mix"
        return await self._hashes_of_cells(
            redis, [self.rollup_key(kind, period, day) for day in days]
        )

    async def _hashes_of_cells(self, redis: Redis, keys: list[str]) -> list[dict[CellKey, int]]:
        raw_hashes = await _hgetall_each(redis, keys)
        return [
            {parse_cell_field(k): int(v) for k, v in raw.items() if v != b"0"} for raw in raw_hashes
        ]

    async def mix_with_services(
        self, redis: Redis, rollups: Sequence[tuple[Period, dt.date]], services: Collection[str]
    ) -> list[tuple[dict[CellKey, int], dict[CellKey, int]]]:
        """For each rollup (the period containing a day): all its contacts summed over services
        (the ``mix`` hash), and the contacts of just ``services`` summed over them, per district,
        channel and mode (service ``ALL_SERVICES``), in one round trip.

        The second part is summed on the server (``lua/sum_services.lua``: an ``HMGET`` of the few
        fields those services can have): a year of weekly rollups asks for about 20,000 fields
        of per-service hashes, which cost more to send and parse than the figures themselves.
        """
        prefixes = [mix_field(d, c, m) for d in District for c in Channel for m in ContactMode]
        script_args = [str(len(prefixes)), *prefixes, *sorted(services)]
        async with redis.pipeline(transaction=False) as pipe:
            for period, day in rollups:
                pipe.hgetall(self.rollup_key("mix", period, day))
            if services:
                pipe.eval(
                    _SUM_SERVICES,
                    len(rollups),
                    *[self.rollup_key("cells", period, day) for period, day in rollups],
                    *script_args,
                )
            raw: list[Any] = await pipe.execute()
        summed: list[list[int]] = raw[len(rollups)] if services else [[] for _ in rollups]
        result: list[tuple[dict[CellKey, int], dict[CellKey, int]]] = []
        for mix_raw, pairs in zip(raw[: len(rollups)], summed, strict=True):
            mix = {_parsed_cell(k): int(v) for k, v in mix_raw.items() if v != b"0"}
            picked = {
                _parsed_cell(prefixes[int(pairs[i]) - 1]): int(pairs[i + 1])
                for i in range(0, len(pairs), 2)
            }
            result.append((mix, picked))
        return result

    async def totals(self, redis: Redis) -> dict[tuple[str, str, str], int]:
        """Contacts since the beginning per (district, channel, mode)."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("totals"))
        return {tuple(reply_text(k).split(SEP)): int(v) for k, v in raw.items()}  # type: ignore[misc]

    async def abandoned(
        self, redis: Redis, days: Sequence[dt.date]
    ) -> list[dict[tuple[District, str], int]]:
        """Abandoned KVIK sessions of each of ``days`` per district and service (one round trip)."""
        raw_days = await _hgetall_each(redis, [self.key("abandoned", d.isoformat()) for d in days])
        result: list[dict[tuple[District, str], int]] = []
        for raw in raw_days:
            day_counts: dict[tuple[District, str], int] = {}
            for key, value in raw.items():
                district, service = reply_text(key).split(SEP)
                day_counts[(District(district), service)] = int(value)
            result.append(day_counts)
        return result

    async def flat_hash(self, redis: Redis, *parts: str) -> dict[str, int]:
        """A hash of integer counts, fields as text."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key(*parts))
        return {reply_text(k): int(float(v)) for k, v in raw.items()}

    async def day_hashes(
        self, redis: Redis, prefix: Sequence[str], days: Sequence[dt.date]
    ) -> dict[str, int]:
        """The sum over ``days`` of the hashes ``<prefix>:<day>`` (one round trip)."""
        raw_days = await _hgetall_each(redis, [self.key(*prefix, d.isoformat()) for d in days])
        summed: dict[str, int] = {}
        for raw in raw_days:
            for key, value in raw.items():
                field = reply_text(key)
                summed[field] = summed.get(field, 0) + int(value)
        return summed

    async def help_wait(self, redis: Redis) -> dict[str, HelpWait]:
        """The time-to-help histogram per help channel."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("kvik", "help", "wait"))
        waits: dict[str, HelpWait] = {}
        for key, value in raw.items():
            channel, what = reply_text(key).split(SEP)
            wait = waits.setdefault(channel, HelpWait({}, 0, 0.0))
            if what == "sum":
                waits[channel] = HelpWait(wait.buckets, wait.count, float(value))
            elif what == "count":
                waits[channel] = HelpWait(wait.buckets, int(value), wait.total_seconds)
            else:
                wait.buckets[float(what)] = int(value)
        return waits

    async def kiosks(self, redis: Redis) -> list[KioskState]:
        """Every kiosk's last state."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("kiosks"))
        kiosks = []
        for value in raw.values():
            state, entry_id, district = reply_text(value).split(SEP)
            kiosks.append(KioskState(state, entry_id, District(district)))
        return kiosks

    async def entries(self, redis: Redis) -> dict[str, RegistryEntry]:
        """Every registry entry the service has heard of."""
        copied = await self._entries.all(redis)
        return {entry_id: _parse_entry(state) for entry_id, state in copied.items()}

    async def catalogue(self, redis: Redis) -> set[str]:
        """The codes of the active catalogue services the registry has told of."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("catalogue"))
        return {
            reply_text(code)
            for code, state in raw.items()
            if reply_text(state).startswith("active")
        }

    async def general_needs(self, redis: Redis) -> dict[str, bool]:
        """Every catalogue service the registry has told of (retired too, for history) ->
        True for a general-needs service, False for a special-needs one."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("catalogue"))
        return {
            reply_text(code): not reply_text(state).endswith("special")
            for code, state in raw.items()
        }

    async def entry(self, redis: Redis, entry_id: str) -> RegistryEntry | None:
        """One registry entry, or None when the registry has not told of it."""
        state = await self._entries.get(redis, entry_id)
        return None if state is None else _parse_entry(state)

    async def usage_cells(
        self, redis: Redis, first: dt.date, last: dt.date, by_service: bool
    ) -> list[UsageCell]:
        """The usage from ``first`` to ``last`` (inclusive), read from as few rollups as cover
        it (one for a day, ISO week or month); a place's cells may repeat across rollups.
        ``by_service`` False reads ``usage:mix`` (service ``ALL_SERVICES``)."""
        kind = "cells" if by_service else "mix"
        keys: list[str] = []
        day = first
        while day <= last:
            period, span = _largest_period_from(day, last)
            keys.append(self.usage_key(kind, period, day))
            day += span
        return [
            parse_usage_field(k, int(v))
            for raw in await _hgetall_each(redis, keys)
            for k, v in raw.items()
            if int(v) != 0
        ]

    async def usage_totals(self, redis: Redis) -> list[UsageCell]:
        """Place-bound contacts since the beginning, per place, channel and mode."""
        raw: dict[bytes | str, bytes | str] = await redis.hgetall(self.key("usage", "totals"))
        return [parse_usage_field(k, int(v)) for k, v in raw.items() if int(v) != 0]

    async def sites(self, redis: Redis) -> dict[str, RegistrySite]:
        """Every registry site the service has heard of (retired ones too)."""
        copied = await self._sites.all(redis)
        return {site_id: _parse_site(state) for site_id, state in copied.items()}


@dataclass(frozen=True)
class UsageCell:
    """Contacts at one place (entry and/or site) of one district, channel, mode and service."""

    district: District
    entry_id: str | None
    site_id: str | None
    channel: Channel
    mode: ContactMode
    service: str
    count: int


def parse_usage_field(raw: bytes | str, count: int) -> UsageCell:
    """The cell a ``usage`` hash field names (``usage:mix``/totals: service ``ALL_SERVICES``)."""
    parts = reply_text(raw).split(SEP)
    return UsageCell(
        district=District(parts[0]),
        entry_id=parts[1] or None,
        site_id=parts[2] or None,
        channel=Channel(parts[3]),
        mode=ContactMode(parts[4]),
        service=parts[5] if len(parts) == 6 else ALL_SERVICES,
        count=count,
    )


Counts = Counter[tuple[str, str]]
"""Increments by (hash key, field), summed over a transaction before they are queued."""


def flush_counts(pipe: Pipeline, counts: Counts) -> None:
    """Queue one HINCRBY per (key, field) that changed (for writes outside the consumer, which
    applies a transaction's ``counts`` itself)."""
    for (key, field), change in counts.items():
        if change:
            pipe.hincrby(key, field, change)


async def _hgetall_each(redis: Redis, keys: Sequence[str]) -> list[dict[bytes, bytes]]:
    """Every hash of ``keys``, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        raw: list[dict[bytes, bytes]] = await pipe.execute()
    return raw


def _parse_entry(text: str) -> RegistryEntry:
    state = json.loads(text)
    return RegistryEntry(
        kind=EntryKind(state["kind"]),
        district=District(state["district"]) if state.get("district") else None,
        status=EntryStatus(state["status"]),
        site_id=state.get("site_id"),
        name=state.get("name", ""),
        administration=Administration(state["administration"]),
        opening_hours=OpeningHours.model_validate(state["opening_hours"]),
        services=tuple(state.get("services") or ()),
        staff_help=tuple(state.get("staff_help") or ()),
        retired=bool(state.get("retired", False)),
    )


def _parse_site(text: str) -> RegistrySite:
    state = json.loads(text)
    return RegistrySite(
        name=state["name"],
        district=District(state["district"]),
        owner=Administration(state["owner"]),
        latitude=float(state["latitude"]),
        longitude=float(state["longitude"]),
        retired=bool(state.get("retired", False)),
    )


def rollups_covering(first: dt.date, last: dt.date) -> list[tuple[Period, dt.date]]:
    """The fewest rollups that cover ``first`` to ``last`` (inclusive) exactly, as (period, its
    first day): whole months, then whole ISO weeks, then single days."""
    rollups: list[tuple[Period, dt.date]] = []
    day = first
    while day <= last:
        period, span = _largest_period_from(day, last)
        rollups.append((period, day))
        day += span
    return rollups


def _largest_period_from(day: dt.date, last: dt.date) -> tuple[Period, dt.timedelta]:
    """The largest rollup starting on ``day`` that ends by ``last``, and its length."""
    if day.day == 1:
        next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        if next_month - dt.timedelta(days=1) <= last:
            return Period.MONTH, next_month - day
    if day.weekday() == 0 and day + dt.timedelta(days=6) <= last:
        return Period.WEEK, dt.timedelta(days=7)
    return Period.DAY, dt.timedelta(days=1)
