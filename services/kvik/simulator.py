"""A kiosk simulator: N kiosks at the registry's KVIK points post realistic sessions to a running
kvik service, go offline now and then and come back with a backlog (batch upload).

``kanalhub kiosk-sim --kiosks 10 --rate 20`` drives the hub ``kanalhub run`` started. It is a
tool, not part of the service: it learns the KVIK points from the registry's HTTP API and
registers its kiosks through the kvik API with a development admin token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from services.plumbing.auth import mint_token
from services.plumbing.settings import HubSettings

STEPS = ("choose_service", "identify", "read_guide", "form", "upload", "confirm", "receipt")
HEARTBEAT_SECONDS = 30.0


@dataclass
class SimKiosk:
    """One simulated kiosk and what it has not been able to send yet."""

    kiosk_id: str
    entry_id: str
    token: str
    services: list[str]
    backlog: list[dict[str, Any]] = field(default_factory=list)
    offline_until: float = 0.0
    last_heartbeat: float = 0.0


@dataclass
class Tally:
    """What the simulator sent, for the progress line."""

    posted: int = 0
    uploaded: int = 0
    refused: int = 0
    offline_spells: int = 0


def fake_session(kiosk: SimKiosk, rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    """A realistic session that just ended: 2-15 minutes, 10-20 % with help, some abandoned."""
    duration = dt.timedelta(seconds=rng.randint(120, 900))
    roll = rng.random()
    outcome = "abandoned" if roll < 0.12 else "referred" if roll < 0.17 else "completed"
    steps = list(STEPS[: rng.randint(2, len(STEPS))])
    body: dict[str, Any] = {
        "session_id": str(uuid.uuid4()),
        "kiosk_id": kiosk.kiosk_id,
        "service": rng.choice(kiosk.services),
        "started_at": (now - duration).isoformat(),
        "ended_at": now.isoformat(),
        "steps": steps,
        "outcome": outcome,
        "help": rng.choice(["video", "phone"]) if rng.random() < 0.15 else "none",
    }
    if outcome == "referred":
        body["referred_to"] = rng.choice(["digital", "phone", "counter"])
    return body


async def kvik_points(registry_url: str) -> list[dict[str, Any]]:
    """The open KVIK points, from the registry's API."""
    async with httpx.AsyncClient(base_url=registry_url, timeout=10) as client:
        response = await client.get("/entries", params={"kind": "kvik_point", "status": "open"})
        response.raise_for_status()
        points: list[dict[str, Any]] = response.json()
    return points


async def register(
    client: httpx.AsyncClient, admin: dict[str, str], points: list[dict[str, Any]], count: int
) -> list[SimKiosk]:
    """Register ``count`` kiosks spread over the points (or take new tokens for known ones)."""
    kiosks = []
    for index in range(count):
        point = points[index % len(points)]
        kiosk_id = f"sim-{point['entry_id']}-{index // len(points) + 1:02d}"
        token = await _with_retries(partial(_enrol, client, admin, kiosk_id, point["entry_id"]))
        kiosks.append(SimKiosk(kiosk_id, point["entry_id"], token, point["services"]))
    return kiosks


async def _enrol(
    client: httpx.AsyncClient, admin: dict[str, str], kiosk_id: str, entry_id: str
) -> str:
    response = await client.post(
        "/kiosks", json={"kiosk_id": kiosk_id, "entry_id": entry_id}, headers=admin
    )
    if response.status_code == 409:  # registered by an earlier run: take a new token
        response = await client.post(f"/kiosks/{kiosk_id}/token", headers=admin)
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


async def _with_retries(call: Callable[[], Awaitable[str]], attempts: int = 5) -> str:
    """Retry a call that failed on the way or with a 5xx (a busy hub), with growing pauses."""
    for attempt in range(attempts):
        try:
            return await call()
        except httpx.HTTPError as error:
            server_side = not isinstance(error, httpx.HTTPStatusError) or (
                error.response.status_code >= 500
            )
            if not server_side or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


async def _step(
    client: httpx.AsyncClient,
    kiosk: SimKiosk,
    rng: random.Random,
    tally: Tally,
    offline_chance: float,
    clock: Callable[[], float],
) -> None:
    """One session of one kiosk: sent now, or kept for later while offline."""
    headers = {"Authorization": f"Bearer {kiosk.token}"}
    now = clock()
    body = fake_session(kiosk, rng, dt.datetime.now(dt.UTC))
    if now < kiosk.offline_until:
        kiosk.backlog.append(body)
        return
    if kiosk.backlog:
        response = await client.post(
            "/sessions/batch", json={"sessions": kiosk.backlog[:1000]}, headers=headers
        )
        if response.status_code == 207:
            tally.uploaded += response.json()["created"] + response.json()["replayed"]
            tally.refused += response.json()["failed"]
            del kiosk.backlog[:1000]
    if now - kiosk.last_heartbeat > HEARTBEAT_SECONDS:
        await client.post(
            f"/kiosks/{kiosk.kiosk_id}/heartbeat",
            json={"software_version": "sim-1.0", "state": "ready"},
            headers=headers,
        )
        kiosk.last_heartbeat = now
    response = await client.post("/sessions", json=body, headers=headers)
    if response.status_code in {200, 201}:
        tally.posted += 1
    else:
        tally.refused += 1
    if rng.random() < offline_chance:
        kiosk.offline_until = now + rng.uniform(10, 60)
        tally.offline_spells += 1


async def simulate(
    kvik_url: str,
    registry_url: str,
    kiosks: int,
    rate: float,
    duration: float,
    offline_chance: float = 0.01,
    seed: int | None = None,
    progress: Callable[[Tally, float], None] | None = None,
) -> Tally:
    """Run ``kiosks`` kiosks posting ``rate`` sessions per second in all for ``duration`` s."""
    rng = random.Random(seed)
    points = await kvik_points(registry_url)
    if not points:
        raise RuntimeError("the registry has no open KVIK points")
    admin = {"Authorization": f"Bearer {mint_token(HubSettings(), 'kiosk-sim', ['kvik:admin'])}"}
    tally = Tally()
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=kvik_url, timeout=30) as client:
        fleet = await register(client, admin, points, kiosks)
        started = loop.time()

        async def run_kiosk(kiosk: SimKiosk) -> None:
            # Each kiosk does one thing at a time, as a real one does; together they make
            # ``rate`` sessions per second.
            while loop.time() - started < duration:
                await asyncio.sleep(rng.expovariate(rate / len(fleet)))
                try:
                    await _step(client, kiosk, rng, tally, offline_chance, loop.time)
                except httpx.HTTPError:
                    tally.refused += 1
                if progress is not None:
                    progress(tally, min(duration, loop.time() - started))
            kiosk.offline_until = 0.0  # back online at the end: upload what is left
            if kiosk.backlog:
                try:
                    await _step(client, kiosk, rng, tally, 0.0, loop.time)
                except httpx.HTTPError:
                    tally.refused += len(kiosk.backlog)

        await asyncio.gather(*(run_kiosk(kiosk) for kiosk in fleet))
    return tally
