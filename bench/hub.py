"""A year of Copenhagen through the whole hub: the four services as separate processes on the
embedded broker and Valkey, ``kanalhub simulate``'s traffic sent through their HTTP APIs, timed
until the metrics service has counted every accepted contact (and checked that it counted
exactly those)."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from bench.plumbing import Result
from services.hub.cluster import Cluster
from services.hub.simulate import Simulator


async def year(days: int) -> Result:
    """Replay ``days`` days up to yesterday and wait until the books balance."""
    with tempfile.TemporaryDirectory(prefix="kanalhub-bench-hub-") as scratch:
        cluster = await Cluster.start(Path(scratch))
        try:
            simulator = Simulator(cluster.hub, cluster.endpoints)
            last = dt.date.today() - dt.timedelta(days=1)
            started = time.perf_counter()
            try:
                books = await simulator.replay(last - dt.timedelta(days=days - 1), last)
            finally:
                await simulator.close()
            accepted = time.perf_counter() - started
            counted = await cluster.settle(books.contacts, within=600, quiet=0.0)
            wall = time.perf_counter() - started
        finally:
            cluster.stop()
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
