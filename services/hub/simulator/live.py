"""Live kiosks, ``kanalhub simulate --kiosks N --rate R`` (``make kiosk-sim``): N kiosks at the
registry's open KVIK points post sessions one by one as they end (``POST /sessions``), ``R`` per
second in all, report heartbeats, go offline now and then and come back with a backlog
(``POST /sessions/batch``) - to watch a running hub work, next to ``make run``.

It is a mode of the one simulator: the kiosks are registered through
:class:`~services.hub.simulator.driver.Simulator` (with its retries) and their sessions come
from the traffic model's :func:`~services.hub.simulator.traffic.kiosk_session`, re-timed to end
when they are sent. Unlike a replay it keeps no books: a live kiosk sends each request once and
keeps what got no answer in its backlog, as a real one does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.contracts import District
from services.hub.simulator.driver import BATCH, Kiosk, Simulator, now_utc, session_body
from services.hub.simulator.traffic import KIOSK_SERVICES, ending_at, kiosk_session

HEARTBEAT_SECONDS = 30.0


@dataclass
class LiveKiosk:
    """One live kiosk and what it has not been able to send yet."""

    kiosk: Kiosk
    backlog: list[dict[str, Any]] = field(default_factory=list)
    offline_until: float = 0.0
    last_heartbeat: float = 0.0


@dataclass
class Tally:
    """What the live kiosks sent, for the progress line."""

    posted: int = 0
    uploaded: int = 0
    refused: int = 0
    offline_spells: int = 0


async def register_fleet(
    simulator: Simulator, points: list[dict[str, Any]], count: int
) -> list[LiveKiosk]:
    """Register ``count`` kiosks spread over the KVIK ``points`` (registry entries), or take new
    tokens for the ones an earlier run registered."""
    fleet = []
    for index in range(count):
        point = points[index % len(points)]
        entry_id = point["entry_id"]
        # Numbered, so they never take the token of a replay's kiosk (``sim-<entry>``).
        kiosk_id = f"sim-{entry_id}"[:60] + f"-{index // len(points) + 1:02d}"
        token = await simulator.register_kiosk(kiosk_id, entry_id)
        services = tuple(point.get("services") or ()) or KIOSK_SERVICES
        kiosk = Kiosk(kiosk_id, entry_id, District(point["district"]), token, services)
        fleet.append(LiveKiosk(kiosk))
    return fleet


async def step(
    simulator: Simulator,
    live: LiveKiosk,
    rng: random.Random,
    tally: Tally,
    offline_chance: float,
    clock: Callable[[], float],
) -> None:
    """One session of one kiosk, ending now: sent, or kept for later while offline. A kiosk
    back online first uploads its backlog, and reports a heartbeat when one is due."""
    kvik, kiosk = simulator.endpoints.kvik, live.kiosk
    now = clock()
    wall = now_utc()
    body = session_body(kiosk.kiosk_id, ending_at(kiosk_session(rng, wall, kiosk.services), wall))
    if now < live.offline_until:
        live.backlog.append(body)
        return
    if live.backlog:
        batch = {"sessions": live.backlog[:BATCH]}
        response = await simulator.post_once(f"{kvik}/sessions/batch", batch, kiosk.token)
        if response.status_code == 207:
            answer = response.json()
            tally.uploaded += answer["created"] + answer["replayed"]
            tally.refused += answer["failed"]
            del live.backlog[:BATCH]
    if now - live.last_heartbeat > HEARTBEAT_SECONDS:
        await simulator.post_once(
            f"{kvik}/kiosks/{kiosk.kiosk_id}/heartbeat",
            {"software_version": "sim-1.0", "state": "ready"},
            kiosk.token,
        )
        live.last_heartbeat = now
    response = await simulator.post_once(f"{kvik}/sessions", body, kiosk.token)
    if response.status_code in {200, 201}:
        tally.posted += 1
    else:
        tally.refused += 1
    if rng.random() < offline_chance:
        live.offline_until = now + rng.uniform(10, 60)
        tally.offline_spells += 1


async def run_live_kiosks(
    simulator: Simulator,
    kiosks: int,
    rate: float,
    duration: float,
    offline_chance: float = 0.01,
    seed: int | None = None,
    progress: Callable[[Tally, float], None] | None = None,
) -> Tally:
    """Run ``kiosks`` kiosks posting ``rate`` sessions per second in all for ``duration`` s."""
    rng = random.Random(seed)
    points = await simulator.kvik_points()
    if not points:
        raise RuntimeError("the registry has no open KVIK points")
    tally = Tally()
    loop = asyncio.get_running_loop()
    fleet = await register_fleet(simulator, points, kiosks)
    started = loop.time()

    async def run_kiosk(live: LiveKiosk) -> None:
        # Each kiosk does one thing at a time, as a real one does; together they make
        # ``rate`` sessions per second.
        while loop.time() - started < duration:
            await asyncio.sleep(rng.expovariate(rate / len(fleet)))
            try:
                await step(simulator, live, rng, tally, offline_chance, loop.time)
            except httpx.HTTPError:
                tally.refused += 1
            if progress is not None:
                progress(tally, min(duration, loop.time() - started))
        live.offline_until = 0.0  # back online at the end: upload what is left
        if live.backlog:
            try:
                await step(simulator, live, rng, tally, 0.0, loop.time)
            except httpx.HTTPError:
                tally.refused += len(live.backlog)

    await asyncio.gather(*(run_kiosk(live) for live in fleet))
    return tally
