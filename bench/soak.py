"""``python -m bench.soak`` (``make soak``): the whole hub as processes under steady simulated
traffic at half its maximum rate for ``--duration`` seconds (default 600), sampling every
``--interval`` seconds (default 10) each service's RSS and Valkey's ``used_memory``; reports the
least-squares slope over the second half in bytes per minute and whether it is flat.

- The maximum rate is measured at the start of the same run, on the same hub (a month of
  Copenhagen replayed as fast as the hub takes it, timed until the metrics service has counted
  every accepted contact), unless ``--rate`` gives the soak rate or ``--max-rate-from-json``
  takes it from the hub suite's year result (``bench/results/hub-latest.json``). The JSON says
  which.
- Traffic: the simulator's days of Copenhagen (the last 365, over and over, each pass with a
  new seed so its sessions are new), each day sent when the rate allows.
- Flat: ``|slope| x duration < 5 %`` of the series' mean level over the second half. Valkey is
  expected to grow here: dedupe marks and kvik's session records expire by the wall clock
  (days), so a ten-minute soak only ever adds them; the keys without a TTL are reported apart.

Results: ``bench/results/soak-<time>.json`` and ``soak-latest.json``, and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from bench import machine, memory
from services.hub.cluster import Cluster
from services.hub.simulator.driver import Simulator
from services.hub.simulator.traffic import plan_day

RESULTS = Path(__file__).parent / "results"
FLAT_FRACTION = 0.05
"""Flat: the second-half slope, carried over the whole duration, moves the series by less than
this fraction of its level."""
MEASURE_DAYS = 30
"""Days replayed flat out at the start to measure the maximum rate (1 with ``--tiny``)."""
KEYSPACE_EVERY = 6
"""Scan the key space (marks vs the rest) on every 6th sample: it costs more than INFO."""


@dataclass
class SoakSample:
    """One point of the soak series."""

    t_s: float
    events_sent: int
    events_published: int
    events_consumed: int
    rss: dict[str, int]
    valkey_used_memory: int
    mark_bytes: float | None = None
    persistent_bytes: float | None = None
    groups: dict[str, dict[str, float]] | None = None
    """Bytes per key group (memory.key_space), on the samples that scanned the key space."""


@dataclass
class Soak:
    """What a soak did and measured."""

    duration_s: float
    interval_s: float
    max_rate: float
    max_rate_source: str
    target_rate: float
    events_sent: int = 0
    samples: list[SoakSample] = field(default_factory=list)


async def measure_max_rate(cluster: Cluster, days: int) -> float:
    """Events per second the hub takes end to end: ``days`` days replayed flat out, timed
    until the metrics service has counted every accepted contact."""
    already = await cluster.counted()
    simulator = Simulator(cluster.hub, cluster.endpoints, seed=1)
    last = dt.date.today() - dt.timedelta(days=1)
    started = time.perf_counter()
    try:
        books = await simulator.replay(last - dt.timedelta(days=days - 1), last)
    finally:
        await simulator.close()
    counted = await cluster.settle(already + books.contacts, within=600, quiet=0.0) - already
    if counted != books.contacts:
        raise AssertionError(f"accepted {books.contacts} contacts, counted {counted}")
    return (books.sessions_accepted + books.intake_lines) / (time.perf_counter() - started)


def rate_from_json(path: Path) -> tuple[float, str]:
    """The year result's end-to-end rate from a hub suite report (not a ``--tiny`` one)."""
    report = json.loads(path.read_text())
    if report.get("size", {}).get("tiny"):
        raise ValueError(f"{path} is a --tiny run")
    for result in report["results"]:
        if "events_per_s_end_to_end" in result["figures"]:
            rate = float(result["figures"]["events_per_s_end_to_end"])
            return rate, f"{path.name} ({report['started_at']}): {result['name']}"
    raise ValueError(f"{path} has no year result")


async def traffic(cluster: Cluster, soak: Soak, stop: asyncio.Event) -> None:
    """Send days of Copenhagen at ``soak.target_rate`` events per second until ``stop``."""
    simulator = Simulator(cluster.hub, cluster.endpoints)
    try:
        entries = await simulator.set_up_kiosks()
        last = dt.date.today() - dt.timedelta(days=1)
        first = last - dt.timedelta(days=364)
        started = time.perf_counter()
        sweep = 0
        while not stop.is_set():
            sweep += 1
            for n in range(365):
                if stop.is_set():
                    break
                # A new seed per sweep: new session ids, so every sweep is new traffic.
                plan = plan_day(first + dt.timedelta(days=n), first, entries, 1000 + sweep)
                events = sum(len(s) for s in plan.sessions.values())
                events += len(plan.digital) + len(plan.phone)
                await simulator.send_day(plan)
                soak.events_sent += events
                # Pace: the next day goes when the events sent so far are due.
                due = soak.events_sent / soak.target_rate - (time.perf_counter() - started)
                if due > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=due)
    finally:
        await simulator.close()


async def sample(cluster: Cluster, redis: Redis, soak: Soak, t: float, scan: bool) -> SoakSample:
    """RSS of every service, Valkey's used_memory, event counts (and the key space if
    ``scan``)."""
    published, consumed = await memory.hub_event_counts(memory.cluster_urls(cluster))
    rss = memory.cluster_rss(cluster)
    point = SoakSample(
        t_s=t,
        events_sent=soak.events_sent,
        events_published=published,
        events_consumed=consumed,
        rss=rss,
        valkey_used_memory=await memory.used_memory(redis),
    )
    if scan:
        space = await memory.key_space(redis)
        point.mark_bytes = space.mark_bytes
        point.persistent_bytes = space.persistent_bytes
        point.groups = {name: asdict(group) for name, group in space.groups.items()}
    return point


async def run(
    duration: float,
    interval: float,
    rate: float | None,
    rate_json: Path | None,
    measure_days: int,
    console: Console,
) -> Soak:
    """Start a hub, settle the rate, soak it for ``duration`` seconds, and return the samples."""
    with tempfile.TemporaryDirectory(prefix="kanalhub-soak-") as scratch:
        cluster = await Cluster.start(Path(scratch))
        redis = Redis.from_url(cluster.valkey.url, socket_timeout=30)
        try:
            if rate is not None:
                max_rate, source = 2 * rate, "--rate (given: the soak rate x 2)"
            elif rate_json is not None:
                max_rate, source = rate_from_json(rate_json)
            else:
                with console.status(f"measuring the maximum rate: {measure_days} days flat out"):
                    max_rate = await measure_max_rate(cluster, measure_days)
                source = (
                    f"measured in this run: {measure_days} day(s) replayed flat out, end to end"
                )
            soak = Soak(duration, interval, max_rate, source, max_rate / 2)
            console.print(
                f"max rate {max_rate:,.0f} events/s ({source}); soaking at "
                f"{soak.target_rate:,.0f} events/s for {duration:,.0f} s"
            )
            stop = asyncio.Event()
            sender = asyncio.create_task(traffic(cluster, soak, stop))
            started = time.perf_counter()
            count = 0
            try:
                while True:
                    t = time.perf_counter() - started
                    last = t >= duration
                    point = await sample(
                        cluster, redis, soak, t, scan=last or count % KEYSPACE_EVERY == 0
                    )
                    soak.samples.append(point)
                    console.print(_progress(point, soak))
                    if last or sender.done():
                        break
                    count += 1
                    next_at = min(duration, count * interval)
                    await asyncio.sleep(max(0.0, next_at - (time.perf_counter() - started)))
            finally:
                stop.set()
                await sender  # raises what the traffic raised, if it failed
            return soak
        finally:
            await redis.aclose()
            cluster.stop()


def _progress(point: SoakSample, soak: Soak) -> str:
    services = " ".join(
        f"{name} {size / memory.MiB:.0f}" for name, size in point.rss.items() if name != "valkey"
    )
    return (
        f"[{point.t_s:5.0f}/{soak.duration_s:.0f} s] sent {point.events_sent:,} "
        f"({point.events_sent / max(point.t_s, 1e-9):,.0f}/s), consumed {point.events_consumed:,}"
        f" | RSS MiB {services} | valkey used {point.valkey_used_memory / memory.MiB:.1f} MiB"
    )


def analyse(soak: Soak) -> list[dict[str, Any]]:
    """Per series: the second-half slope (bytes/minute), its level, and whether it is flat."""
    half = [p for p in soak.samples if p.t_s >= soak.duration_s / 2] or soak.samples[-1:]
    minutes = soak.duration_s / 60
    series: dict[str, list[tuple[float, float]]] = {
        f"{name} RSS": [(p.t_s, float(p.rss[name])) for p in half] for name in half[-1].rss
    }
    series["valkey used_memory"] = [(p.t_s, float(p.valkey_used_memory)) for p in half]
    series["valkey dedupe marks"] = [
        (p.t_s, p.mark_bytes) for p in half if p.mark_bytes is not None
    ]
    series["valkey keys without TTL"] = [
        (p.t_s, p.persistent_bytes) for p in half if p.persistent_bytes is not None
    ]
    rows = []
    for name, points in series.items():
        if not points:
            continue
        xs = [t / 60 for t, _ in points]
        ys = [y for _, y in points]
        per_minute = memory.slope(xs, ys)
        level = sum(ys) / len(ys)
        drift = abs(per_minute) * minutes
        rows.append(
            {
                "series": name,
                "samples": len(points),
                "level_bytes": level,
                "slope_bytes_per_minute": per_minute,
                "drift_over_duration_pct": 100 * drift / level if level else 0.0,
                "flat": bool(level and drift < FLAT_FRACTION * level),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print a table, write ``bench/results/soak-*.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, help="soak at this many events/s (skip measuring)")
    parser.add_argument(
        "--max-rate-from-json",
        type=Path,
        nargs="?",
        const=RESULTS / "hub-latest.json",
        help="take the maximum rate from a hub suite report (default bench/results/hub-latest)",
    )
    parser.add_argument("--tiny", action="store_true", help="20 s, 2 s samples, for tests")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.tiny:
        args.duration, args.interval = min(args.duration, 20.0), min(args.interval, 2.0)
    console = Console()
    soak = asyncio.run(
        run(
            args.duration,
            args.interval,
            args.rate,
            args.max_rate_from_json,
            1 if args.tiny else MEASURE_DAYS,
            console,
        )
    )
    rows = analyse(soak)
    host = machine.describe()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "suite": "soak",
        "started_at": datetime.now(UTC).isoformat(),
        "size": {"duration_s": soak.duration_s, "interval_s": soak.interval_s, "tiny": args.tiny},
        "machine": host,
        "rate": {
            "max_events_per_s": soak.max_rate,
            "max_rate_source": soak.max_rate_source,
            "target_events_per_s": soak.target_rate,
            "achieved_events_per_s": soak.events_sent / max(soak.samples[-1].t_s, 1e-9),
            "events_sent": soak.events_sent,
        },
        "flat_rule": f"|slope| x duration < {FLAT_FRACTION:.0%} of the second-half mean level",
        "results": rows,
        "series": [asdict(p) for p in soak.samples],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name in (f"soak-{stamp}.json", "soak-latest.json"):
        (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    console.print(_table(soak, rows, host))
    console.print(f"written to {args.out}/soak-{stamp}.json")
    return 0


def _table(soak: Soak, rows: list[dict[str, Any]], host: dict[str, Any]) -> Table:
    table = Table(
        title=f"kanalhub soak - {soak.duration_s:,.0f} s at {soak.target_rate:,.0f} events/s "
        f"(half of {soak.max_rate:,.0f}), {host['cores']} cores, {host['cpu_model']}",
        caption=f"max rate: {soak.max_rate_source}. Flat: |slope| x duration < "
        f"{FLAT_FRACTION:.0%} of the level. Valkey grows by design within a soak: marks and "
        "kvik session records expire after days of wall clock.",
    )
    for column in ("series (second half)", "level MiB", "slope KiB/min", "drift %", "flat"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["series"],
            f"{row['level_bytes'] / memory.MiB:,.1f}",
            f"{row['slope_bytes_per_minute'] / 1024:,.1f}",
            f"{row['drift_over_duration_pct']:,.1f}",
            "yes" if row["flat"] else "NO",
        )
    return table


if __name__ == "__main__":
    raise SystemExit(main())
