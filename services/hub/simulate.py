"""``kanalhub simulate``: drive the running hub with the traffic of ``simulation`` through the
services' own HTTP APIs, as the kiosks and the external channel systems would.

- KVIK: one simulated kiosk per open KVIK point of the registry (registered with a
  ``kvik:admin`` token; its device token rotated if it already exists), each day's sessions
  uploaded as offline batches (at most 1,000 per request) - they count on the day they happened;
- intake: each day's counts from the digital platform and the contact centre.

``replay`` sends a period (a whole year by default) as fast as the hub accepts it; ``realtime``
posts today's traffic as it happens, for the demo. The books of a run - contacts the services
accepted with a 2xx - are returned, so a caller (the fault suite, the benchmark) can compare them
with what the metrics service counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.contracts import District, SessionOutcome
from services.hub.simulation import COPENHAGEN, DayPlan, IntakeLine, KioskSession, plan_day
from services.plumbing.auth import mint_token
from services.plumbing.backoff import pause
from services.plumbing.settings import HubSettings

BATCH = 1000


@dataclass(frozen=True)
class Endpoints:
    """Where the four services answer."""

    registry: str = "http://127.0.0.1:8001"
    kvik: str = "http://127.0.0.1:8002"
    metrics: str = "http://127.0.0.1:8004"


@dataclass
class Books:
    """What the hub accepted: the figures the metrics service must end up counting."""

    contacts: int = 0
    """Contacts accepted (completed sessions + intake counts); a replayed item counts once."""
    sessions_sent: int = 0
    sessions_accepted: int = 0
    sessions_refused: int = 0
    intake_lines: int = 0
    by_day: dict[dt.date, int] = field(default_factory=dict)

    def add(self, day: dt.date, contacts: int) -> None:
        """Book ``contacts`` accepted on ``day``."""
        self.contacts += contacts
        self.by_day[day] = self.by_day.get(day, 0) + contacts


@dataclass
class Kiosk:
    """A simulated kiosk and its device token."""

    kiosk_id: str
    entry_id: str
    district: District
    token: str


class Simulator:
    """Sends simulated traffic to a running hub."""

    def __init__(
        self,
        settings: HubSettings,
        endpoints: Endpoints | None = None,
        seed: int = 2026,
        timeout: float = 60.0,
    ) -> None:
        self._settings = settings
        self._endpoints = endpoints or Endpoints()
        self._seed = seed
        self._http = httpx.AsyncClient(timeout=timeout)
        self._admin = self._bearer("simulator-admin", "kvik:admin")
        self._ingest = self._bearer("simulator-intake", "metrics:ingest")
        self.kiosks: dict[str, Kiosk] = {}
        self.books = Books()

    def _bearer(self, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self._settings, subject, [role])}"}

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def set_up_kiosks(self) -> dict[District, list[str]]:
        """A kiosk at every open KVIK point; returns the KVIK entries per district."""
        response = await self._http.get(
            f"{self._endpoints.registry}/entries",
            params={"kind": "kvik_point", "status": "open"},
        )
        response.raise_for_status()
        entries: dict[District, list[str]] = {}
        for entry in response.json():
            entry_id, district = entry["entry_id"], District(entry["district"])
            kiosk_id = f"sim-{entry_id}"[:64]
            created = await self._http.post(
                f"{self._endpoints.kvik}/kiosks",
                json={"kiosk_id": kiosk_id, "entry_id": entry_id},
                headers=self._admin,
            )
            if created.status_code == 409:  # registered by an earlier run: a new token
                created = await self._http.post(
                    f"{self._endpoints.kvik}/kiosks/{kiosk_id}/token", headers=self._admin
                )
            created.raise_for_status()
            self.kiosks[entry_id] = Kiosk(kiosk_id, entry_id, district, created.json()["token"])
            entries.setdefault(district, []).append(entry_id)
        return entries

    async def send_day(self, plan: DayPlan) -> None:
        """Upload a day's sessions (per kiosk, in batches) and its two intake files."""
        uploads = [
            self._upload(self.kiosks[entry_id], sessions[start : start + BATCH], plan.day)
            for entry_id, sessions in plan.sessions.items()
            for start in range(0, len(sessions), BATCH)
            if sessions
        ]
        uploads.append(self._intake("digital_platform", plan.day, plan.digital))
        uploads.append(self._intake("contact_centre", plan.day, plan.phone))
        await asyncio.gather(*uploads)

    async def _upload(self, kiosk: Kiosk, sessions: list[KioskSession], day: dt.date) -> None:
        body = {"sessions": [session_body(kiosk, s) for s in sessions]}
        response = await self._post(
            f"{self._endpoints.kvik}/sessions/batch",
            body,
            {"Authorization": f"Bearer {kiosk.token}"},
        )
        self.books.sessions_sent += len(sessions)
        for item, session in zip(response.json()["items"], sessions, strict=True):
            if item["status"] in (200, 201):
                self.books.sessions_accepted += 1
                if item["status"] == 201 and session.outcome is SessionOutcome.COMPLETED:
                    self.books.add(day, 1)
            else:
                self.books.sessions_refused += 1

    async def _intake(self, source: str, day: dt.date, lines: list[IntakeLine]) -> None:
        if not lines:
            return
        body = {
            "source": source,
            "day": day.isoformat(),
            "items": [
                {
                    "district": line.district.value,
                    "service": line.service,
                    "self_service": line.self_service,
                    "assisted": line.assisted,
                }
                for line in lines
            ],
        }
        await self._post(f"{self._endpoints.metrics}/intake", body, self._ingest)
        self.books.intake_lines += len(lines)
        self.books.add(day, sum(line.self_service + line.assisted for line in lines))

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        """POST, retrying connection failures and 5xx: the hub's writes are idempotent
        (session ids, replacing intake), so a retry never counts twice."""
        delay = 0.2
        for attempt in range(8):
            try:
                response = await self._http.post(url, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == 7:
                    raise
            else:
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        raise RuntimeError(f"{url} refused: {response.status_code} {response.text}")
                    return response
                if attempt == 7:
                    response.raise_for_status()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def replay(
        self,
        first: dt.date,
        last: dt.date,
        progress: Callable[[int, int], None] = lambda done, total: None,
        concurrency: int = 4,
    ) -> Books:
        """Send every day from ``first`` to ``last`` (inclusive) as fast as the hub accepts."""
        entries = await self.set_up_kiosks()
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(day: dt.date) -> None:
            nonlocal done
            async with gate:
                await self.send_day(plan_day(day, first, entries, self._seed))
                done += 1
                progress(done, len(days))

        await asyncio.gather(*(one(day) for day in days))
        return self.books

    async def realtime(
        self,
        stop: asyncio.Event,
        speed: float = 1.0,
        history_weeks: int = 8,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> Books:
        """Replay the ``history_weeks`` before today (so the trend and the forecast have data),
        then post today's sessions as their end times pass (``speed`` x faster than the clock)
        until ``stop`` is set."""
        today = dt.datetime.now(COPENHAGEN).date()
        start = today - dt.timedelta(weeks=history_weeks)
        if history_weeks:
            await self.replay(start, today - dt.timedelta(days=1))
        entries = await self.set_up_kiosks()
        plan = plan_day(today, start, entries, self._seed)
        pending = sorted(
            ((s.ended_at, entry_id, s) for entry_id, ss in plan.sessions.items() for s in ss),
            key=lambda item: item[0],
        )
        started = dt.datetime.now(dt.UTC)
        day_start = dt.datetime.combine(today, dt.time(9), COPENHAGEN).astimezone(dt.UTC)
        sent = 0
        while not stop.is_set() and sent < len(pending):
            clock = day_start + (dt.datetime.now(dt.UTC) - started) * speed
            due = [item for item in pending[sent:] if item[0] <= clock]
            for _, entry_id, session in due:
                # re-timed to end now: the kvik service refuses sessions from the future
                now = dt.datetime.now(dt.UTC)
                length = session.ended_at - session.started_at
                retimed = dataclasses.replace(session, started_at=now - length, ended_at=now)
                await self._upload(self.kiosks[entry_id], [retimed], today)
            sent += len(due)
            progress(sent, len(pending))
            await pause(1.0, stop)
        return self.books


def session_body(kiosk: Kiosk, session: KioskSession) -> dict[str, Any]:
    """The kvik service's JSON body for ``session`` posted by ``kiosk``."""
    body: dict[str, Any] = {
        "session_id": session.session_id,
        "kiosk_id": kiosk.kiosk_id,
        "service": session.service,
        "started_at": session.started_at.isoformat(),
        "ended_at": session.ended_at.isoformat(),
        "steps": list(session.steps),
        "outcome": session.outcome.value,
        "help": session.help.value,
    }
    if session.referred_to is not None:
        body["referred_to"] = session.referred_to
    return body
