"""The whole hub: the four services as separate processes on the embedded broker and Valkey.

- Freshness: from a kiosk's session POST returning to the metrics service's share API counting
  it (polled every 5 ms), one session at a time.
- A year of Copenhagen: ``kanalhub simulate``'s traffic sent through the services' HTTP APIs,
  timed until the metrics service has counted every accepted contact (checked: exactly those).
- Memory after the year (benchmark 6): while the year replays, each service's RSS, Valkey's
  ``used_memory`` and the bytes per Redis key group (dedupe marks apart) are sampled with the
  events published and consumed so far; reported per million events, with the slope over the
  later half. Dedupe marks expire ``dedupe_ttl_seconds`` after they are written by the wall
  clock, so none expires during a replay that takes minutes: their growth is reported apart,
  and the steady state at the real TTL is *computed* (marks per day x TTL days x bytes/mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from redis.asyncio import Redis

from bench import memory
from bench.plumbing import Result
from bench.stats import percentile
from services.contracts import HelpChannel, SessionOutcome
from services.contracts.geography import COPENHAGEN
from services.hub.cluster import Cluster
from services.hub.simulator.driver import Simulator, session_body
from services.hub.simulator.traffic import KioskSession
from services.plumbing.auth import mint_token
from services.plumbing.settings import HubSettings

FLAT_FRACTION = 0.05
"""A series is flat when its later-half slope, carried over the later half, moves it by less
than this fraction of its level."""


@dataclass
class SeriesResult(Result):
    """A result that also carries the samples it was computed from (written to the JSON)."""

    series: list[dict[str, Any]] = field(default_factory=list)


async def run_all(days: int, samples: int, sample_every: float = 8.0) -> list[Result]:
    """Freshness, then ``days`` days of Copenhagen with memory sampled every ``sample_every``
    seconds, on one hub of processes."""
    with tempfile.TemporaryDirectory(prefix="kanalhub-bench-hub-") as scratch:
        cluster = await Cluster.start(Path(scratch))
        try:
            fresh = await freshness(cluster, samples)
            async with MemoryProbe(cluster, sample_every) as probe:
                replayed = await year(cluster, days, probe)
            return [fresh, replayed, *memory_results(probe.samples, days, cluster.hub)]
        finally:
            cluster.stop()


@dataclass
class MemorySample:
    """One point of the memory series."""

    wall_s: float
    phase: str
    """``baseline`` (before the replay), ``replay`` (sending), ``settle`` (metrics catching
    up) or ``settled`` (every accepted contact counted)."""
    days_sent: int
    events_accepted: int
    """Sessions and intake lines the services accepted over HTTP."""
    events_published: int
    events_consumed: int
    rss: dict[str, int]
    valkey_used_memory: int
    mark_keys: int
    mark_bytes: float
    other_bytes: float
    """Every key that is not a dedupe mark."""
    persistent_bytes: float
    """Keys without a TTL: neither marks nor windowed records such as kvik's sessions."""
    groups: dict[str, dict[str, float]]


class MemoryProbe:
    """Samples the hub's memory every ``every`` seconds in the background (``async with``),
    and on demand (``await probe.sample(phase)``)."""

    def __init__(self, cluster: Cluster, every: float) -> None:
        self.cluster = cluster
        self.every = every
        self.samples: list[MemorySample] = []
        self.phase = "baseline"
        self.days_sent = 0
        self.accepted: Any = lambda: 0
        self._redis = Redis.from_url(cluster.valkey.url, socket_timeout=30)
        self._started = time.perf_counter()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> MemoryProbe:
        await self.sample()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.sample()

    async def sample(self, phase: str | None = None) -> MemorySample:
        """Take one sample now (labelled ``phase``, default the probe's current phase)."""
        async with self._lock:  # the timer and an explicit sample never interleave
            cluster = self.cluster
            published, consumed = await memory.hub_event_counts(memory.cluster_urls(cluster))
            rss = memory.cluster_rss(cluster)
            space = await memory.key_space(self._redis)
            point = MemorySample(
                wall_s=time.perf_counter() - self._started,
                phase=phase or self.phase,
                days_sent=self.days_sent,
                events_accepted=int(self.accepted()),
                events_published=published,
                events_consumed=consumed,
                rss=rss,
                valkey_used_memory=await memory.used_memory(self._redis),
                mark_keys=space.mark_keys,
                mark_bytes=space.mark_bytes,
                other_bytes=space.other_bytes,
                persistent_bytes=space.persistent_bytes,
                groups={name: asdict(g) for name, g in space.groups.items()},
            )
            self.samples.append(point)
            return point


async def freshness(cluster: Cluster, samples: int) -> Result:
    """Time from a single session POST answering 201 to ``/share`` counting it."""
    simulator = Simulator(cluster.hub, cluster.endpoints, seed=99)
    reader = {"Authorization": f"Bearer {mint_token(cluster.hub, 'bench', ['metrics:read'])}"}
    delays: list[float] = []
    try:
        await simulator.set_up_kiosks()
        kiosk = next(iter(simulator.kiosks.values()))
        async with httpx.AsyncClient(timeout=30) as http:

            async def total(day: dt.date) -> int:
                response = await http.get(
                    f"{cluster.url('metrics')}/share",
                    params={"period": "day", "date": day.isoformat(), "district": kiosk.district},
                    headers=reader,
                )
                count: int = response.json()["total"]
                return count

            for _ in range(samples):
                now = dt.datetime.now(dt.UTC)
                today = now.astimezone(COPENHAGEN).date()
                before = await total(today)
                session = KioskSession(
                    session_id=str(uuid4()),
                    service="passport",
                    started_at=now - dt.timedelta(minutes=4),
                    ended_at=now,
                    steps=("choose_service", "confirm"),
                    outcome=SessionOutcome.COMPLETED,
                    help=HelpChannel.NONE,
                    referred_to=None,
                )
                posted = await http.post(
                    f"{cluster.url('kvik')}/sessions",
                    json=session_body(kiosk.kiosk_id, session),
                    headers={"Authorization": f"Bearer {kiosk.token}"},
                )
                posted.raise_for_status()
                answered = time.perf_counter()
                while await total(today) <= before:  # noqa: ASYNC110 - polling another process
                    await asyncio.sleep(0.005)
                delays.append(time.perf_counter() - answered)
    finally:
        await simulator.close()
    return Result(
        "freshness: kiosk POST answered -> share API counts it",
        {
            "p50_ms": percentile(delays, 50) * 1000,
            "p99_ms": percentile(delays, 99) * 1000,
            "max_ms": max(delays) * 1000,
        },
        unit="ms",
        note=f"{samples} sessions one at a time; target p99 <= 250 ms",
    )


async def year(cluster: Cluster, days: int, probe: MemoryProbe | None = None) -> Result:
    """Replay ``days`` days up to yesterday and wait until the books balance; ``probe`` (if
    given) is told the phase and progress, and takes the ``settled`` sample at the end."""
    already = await cluster.counted()  # the freshness sessions
    simulator = Simulator(cluster.hub, cluster.endpoints)
    last = dt.date.today() - dt.timedelta(days=1)

    def progress(done: int, _total: int) -> None:
        if probe is not None:
            probe.days_sent = done

    if probe is not None:
        probe.phase = "replay"
        probe.accepted = lambda: simulator.books.sessions_accepted + simulator.books.intake_lines
    started = time.perf_counter()
    try:
        books = await simulator.replay(last - dt.timedelta(days=days - 1), last, progress)
    finally:
        await simulator.close()
    accepted = time.perf_counter() - started
    _say(f"replayed {days} days in {accepted:.0f} s; waiting for {books.contacts:,} contacts")
    if probe is not None:
        probe.phase = "settle"
    counted = await cluster.settle(already + books.contacts, within=600, quiet=0.0) - already
    _say(f"counted {counted:,} of {books.contacts:,} accepted contacts")
    wall = time.perf_counter() - started
    if probe is not None:
        await probe.sample("settled")
    events = books.sessions_accepted + books.intake_lines
    if counted != books.contacts:
        raise AssertionError(f"accepted {books.contacts} contacts, counted {counted}")
    return Result(
        f"{days} days of Copenhagen through the whole hub",
        {
            "wall_s": wall,
            "events_per_s_end_to_end": events / wall,
            "events": float(events),
            "contacts": float(books.contacts),
            "accept_s": accepted,
        },
        unit="s",
        note="KVIK batches + digital/phone intake via HTTP -> outbox -> broker -> metrics; "
        "wall time until every accepted contact is counted (checked equal)",
    )


def _say(line: str) -> None:
    """A progress line on stderr (the suite's spinner owns stdout)."""
    print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} hub: {line}", file=sys.stderr, flush=True)


def _later_half(points: list[MemorySample]) -> list[MemorySample]:
    """The samples from half the final consumed-event count on (the replay's later half)."""
    final = points[-1].events_consumed
    return [p for p in points if p.events_consumed >= final / 2]


def _flat(xs: list[float], ys: list[float]) -> tuple[float, bool]:
    """Slope of ``ys`` over ``xs`` and whether it is flat: slope x (span of xs) is under
    FLAT_FRACTION of the final level."""
    rate = memory.slope(xs, ys)
    span = (max(xs) - min(xs)) if xs else 0.0
    level = ys[-1] if ys else 0.0
    return rate, level > 0 and abs(rate * span) < FLAT_FRACTION * level


def _verdict(rate: float, flat: bool) -> str:
    if flat:
        return "flat"
    return "GROWING" if rate > 0 else "shrinking"


def memory_results(points: list[MemorySample], days: int, hub: HubSettings) -> list[Result]:
    """Benchmark 6 from the probe's samples: RSS per service, Valkey bytes per million events
    (marks apart) with later-half slopes, and the marks' steady state at the real TTL
    (computed)."""
    first, last = points[0], points[-1]
    later = _later_half(points[1:]) or [last]
    xs = [float(p.events_consumed) for p in later]
    million = 1_000_000
    consumed = max(1, last.events_consumed - first.events_consumed)
    published = max(1, last.events_published - first.events_published)
    series = [asdict(p) for p in points]
    target = "target: flat in events beyond the dedupe window"

    rss_figures: dict[str, float] = {}
    verdicts = []
    for name in last.rss:
        ys = [float(p.rss[name]) for p in later]
        rate, flat = _flat(xs, ys)
        rss_figures[f"{name}_rss_mib"] = last.rss[name] / memory.MiB
        rss_figures[f"{name}_later_slope_mib_per_M_events"] = rate * million / memory.MiB
        verdicts.append(f"{name} {_verdict(rate, flat)}")
    rss = SeriesResult(
        f"memory after {days} days: process RSS",
        rss_figures,
        unit="MiB",
        note=f"{target}. RSS at the end; slope over the later half per million events "
        f"consumed ({len(later)} of {len(points)} samples): " + ", ".join(verdicts),
        series=series,
    )

    total_rate, total_flat = _flat(xs, [float(p.valkey_used_memory) for p in later])
    other_rate, other_flat = _flat(xs, [p.other_bytes for p in later])
    kept_rate, kept_flat = _flat(xs, [p.persistent_bytes for p in later])
    mark_rate = memory.slope(xs, [p.mark_bytes for p in later])
    redis = Result(
        f"memory after {days} days: Valkey bytes per million events",
        {
            "used_memory_mib": last.valkey_used_memory / memory.MiB,
            "used_bytes_per_M_events": (last.valkey_used_memory - first.valkey_used_memory)
            * million
            / published,
            "marks_bytes_per_M_events": (last.mark_bytes - first.mark_bytes) * million / published,
            "other_bytes_per_M_events": (last.other_bytes - first.other_bytes)
            * million
            / published,
            "later_slope_used_per_M": total_rate * million,
            "later_slope_marks_per_M": mark_rate * million,
            "later_slope_other_per_M": other_rate * million,
            "persistent_bytes_per_M_events": (last.persistent_bytes - first.persistent_bytes)
            * million
            / published,
            "later_slope_persistent_per_M": kept_rate * million,
        },
        unit="bytes",
        note=f"{target}. Per million events published ({published:,}); slopes per million "
        f"consumed over the later half. Replayed marks never expire (wall-clock TTL), so "
        f"marks grow by design here; everything but marks: "
        f"{_verdict(other_rate, other_flat)}; keys without a TTL: "
        f"{_verdict(kept_rate, kept_flat)}; used_memory (marks included): "
        f"{_verdict(total_rate, total_flat)}. The later half includes the outbox backlog "
        "draining once the replay has been accepted. Bytes per key group are "
        "MEMORY USAGE of up to 50 sampled keys x the group's count",
    )

    ttl_days = hub.dedupe_ttl_seconds / 86400
    bytes_per_mark = last.mark_bytes / consumed if last.mark_bytes else 0.0
    marks_per_day = (last.events_consumed - first.events_consumed) / days
    steady_marks = marks_per_day * ttl_days
    final_space = memory.KeySpace(
        groups={name: memory.GroupSize(**g) for name, g in last.groups.items()}  # type: ignore[arg-type]
    )
    steady = Result(
        f"dedupe marks at the real TTL ({ttl_days:g} days) - computed, not measured",
        {
            "marks_after_replay": float(last.mark_keys),
            "mark_bytes_after_replay_mib": last.mark_bytes / memory.MiB,
            "bytes_per_mark": bytes_per_mark,
            "marks_per_day": marks_per_day,
            "steady_state_marks": steady_marks,
            "steady_state_mib": steady_marks * bytes_per_mark / memory.MiB,
            "steady_state_all_expiring_mib": final_space.steady_state_bytes(days) / memory.MiB,
        },
        unit="computed",
        note=f"{target}. COMPUTED: consumed events per simulated day x {ttl_days:g} TTL days x "
        "measured bytes per mark (mark bytes / events consumed); a replay expires none, "
        "production holds only the last TTL window. all_expiring: every key group with a TTL "
        "(marks, kvik session records) scaled by min(1, its TTL / days replayed)",
    )
    return [rss, redis, steady]
