"""The whole hub: the four services as separate processes on the embedded broker and Valkey.

- Freshness: from a kiosk's session POST returning to the metrics service's share API counting
  it (polled every 5 ms), one session at a time.
- A year of Copenhagen: ``kanalhub simulate``'s traffic sent through the services' HTTP APIs,
  timed until the metrics service has counted every accepted contact (checked: exactly those).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import httpx

from bench.plumbing import Result
from bench.stats import percentile
from services.contracts import HelpChannel, SessionOutcome
from services.hub.cluster import Cluster
from services.hub.simulate import Simulator, session_body
from services.hub.simulation import COPENHAGEN, KioskSession
from services.plumbing.auth import mint_token


async def run_all(days: int, samples: int) -> list[Result]:
    """Freshness, then ``days`` days of Copenhagen, on one hub of processes."""
    with tempfile.TemporaryDirectory(prefix="kanalhub-bench-hub-") as scratch:
        cluster = await Cluster.start(Path(scratch))
        try:
            fresh = await freshness(cluster, samples)
            return [fresh, await year(cluster, days)]
        finally:
            cluster.stop()


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
                    json=session_body(kiosk, session),
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


async def year(cluster: Cluster, days: int) -> Result:
    """Replay ``days`` days up to yesterday and wait until the books balance."""
    already = await cluster.counted()  # the freshness sessions
    simulator = Simulator(cluster.hub, cluster.endpoints)
    last = dt.date.today() - dt.timedelta(days=1)
    started = time.perf_counter()
    try:
        books = await simulator.replay(last - dt.timedelta(days=days - 1), last)
    finally:
        await simulator.close()
    accepted = time.perf_counter() - started
    counted = await cluster.settle(already + books.contacts, within=600, quiet=0.0) - already
    wall = time.perf_counter() - started
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
