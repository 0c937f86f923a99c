"""``kanalhub simulate``: drive the running hub with the traffic of
:mod:`~services.hub.simulator.traffic` through the services' own HTTP APIs, as the kiosks and
the external channel systems would.

- KVIK: one simulated kiosk per open KVIK point of the registry (registered with a
  ``kvik:admin`` token; its device token rotated if it already exists), each day's sessions
  uploaded as offline batches (at most 1,000 per request) - they count on the day they happened;
- intake: each day's counts from the digital platform and the contact centre;
- desks: each open citizen-service centre's tickets of the day, as its queue system's daily
  file (``PUT /desk/entries/{entry}/days/{day}``, replacing any earlier file); in ``realtime``,
  today's tickets one by one on the live feed as they end;
- mobile: a visit at each open mobile stop on its stop days, logged after it took place
  (``POST /visits/held``), and its contacts recorded one by one with their own times.

``replay`` sends a period (a whole year by default) as fast as the hub accepts it; ``realtime``
posts today's traffic as it happens, for the demo; the live kiosks
(:mod:`~services.hub.simulator.live`, ``kanalhub simulate --kiosks N``) post sessions at a
chosen rate and go offline now and then. The books of a run - contacts the services
accepted with a 2xx - are returned, so a caller (the fault suite, the benchmark) can compare them
with what the metrics service counted.

The simulated clients retry like real kiosks: a request that got no definitive answer (the
connection failed or timed out, a 5xx, a 429) is sent again, the same body with the same session
ids, with backoff, until it gets one or ``patience`` runs out. The hub's writes are idempotent,
so a session the hub took in while its answer was lost comes back as 200 with the stored answer;
the books count a session on its definitive answer (201 or 200), once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.contracts import District, SessionOutcome, TicketOutcome
from services.contracts.geography import COPENHAGEN
from services.hub.simulator.traffic import (
    KIOSK_SERVICES,
    DayPlan,
    DeskTicket,
    IntakeLine,
    KioskSession,
    MobileVisit,
    OpenPlace,
    ending_at,
    plan_day,
)
from services.plumbing.auth import mint_token
from services.plumbing.backoff import Backoff, pause
from services.plumbing.settings import HubSettings

BATCH = 1000

RETRYABLE = frozenset({408, 429})
"""Client-error statuses that are no definitive answer: ask again later (as every 5xx)."""


def _definitive(status: int) -> bool:
    return status < 500 and status not in RETRYABLE


@dataclass(frozen=True)
class Endpoints:
    """Where the four services answer."""

    registry: str = "http://127.0.0.1:8001"
    kvik: str = "http://127.0.0.1:8002"
    mobile: str = "http://127.0.0.1:8003"
    metrics: str = "http://127.0.0.1:8004"


@dataclass
class Books:
    """What the hub accepted: the figures the metrics service must end up counting."""

    contacts: int = 0
    """Contacts accepted (completed sessions + intake counts + served desk tickets + mobile
    contacts); a session, ticket or contact counts once, however many attempts it took."""
    sessions_sent: int = 0
    """Distinct sessions sent (a retry is not sent again)."""
    sessions_accepted: int = 0
    sessions_replayed: int = 0
    """Accepted sessions whose first answer was 200: an earlier attempt had been taken in but
    its answer was lost (or an earlier run sent them)."""
    sessions_refused: int = 0
    intake_lines: int = 0
    desk_tickets: int = 0
    """Desk tickets accepted (served and no-shows)."""
    desk_served: int = 0
    mobile_visits: int = 0
    mobile_contacts: int = 0
    requests: int = 0
    """HTTP requests made, retries included."""
    retries: int = 0
    """Requests sent again for want of a definitive answer."""
    items_resent: int = 0
    """Batch items answered 5xx on their own, sent again in a later batch."""
    by_day: dict[dt.date, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    """Contacts accepted per channel (digital, phone, counter, kvik, mobile)."""
    _booked: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def add(self, day: dt.date, contacts: int, channel: str) -> None:
        """Book ``contacts`` accepted on ``day`` on ``channel``."""
        self.contacts += contacts
        self.by_day[day] = self.by_day.get(day, 0) + contacts
        self.by_channel[channel] = self.by_channel.get(channel, 0) + contacts

    def accept_session(self, session: KioskSession, day: dt.date, status: int) -> None:
        """Book a session the hub answered ``status`` (201 or 200) for; a completed one is a
        contact. A session already booked is not booked again."""
        if session.session_id in self._booked:
            return
        self._booked.add(session.session_id)
        self.sessions_accepted += 1
        if status == 200:
            self.sessions_replayed += 1
        if session.outcome is SessionOutcome.COMPLETED:
            self.add(day, 1, "kvik")


@dataclass
class Kiosk:
    """A simulated kiosk and its device token."""

    kiosk_id: str
    entry_id: str
    district: District
    token: str
    services: tuple[str, ...] = KIOSK_SERVICES
    """What citizens do at this kiosk."""


class Simulator:
    """Sends simulated traffic to a running hub."""

    def __init__(
        self,
        settings: HubSettings,
        endpoints: Endpoints | None = None,
        seed: int = 2026,
        timeout: float = 60.0,
        patience: float = 300.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``timeout``: how long one request waits for its answer; ``patience``: how long a
        request is retried without a definitive answer before the simulator gives up;
        ``http``: a client to send through instead of its own (a test's, to an app in
        process), left open by :meth:`close`."""
        self._settings = settings
        self._endpoints = endpoints or Endpoints()
        self._seed = seed
        self._patience = patience
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._admin = self._bearer("simulator-admin", "kvik:admin")
        self._ingest = self._bearer("simulator-intake", "metrics:ingest")
        self._queue = self._bearer("simulator-queue-system", "metrics:desk")
        self._planner = self._bearer("simulator-mobile-team", "mobile:plan")
        self.kiosks: dict[str, Kiosk] = {}
        self.centres: tuple[OpenPlace, ...] = ()
        self.stops: tuple[OpenPlace, ...] = ()
        self.books = Books()

    def _bearer(self, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self._settings, subject, [role])}"}

    @property
    def endpoints(self) -> Endpoints:
        """Where the services answer."""
        return self._endpoints

    async def close(self) -> None:
        """Close the HTTP connections (unless the client was handed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def kvik_points(self) -> list[dict[str, Any]]:
        """The open KVIK points, as the registry's API answers them."""
        response = await self._request(
            "GET",
            f"{self._endpoints.registry}/entries",
            params={"kind": "kvik_point", "status": "open"},
        )
        points: list[dict[str, Any]] = response.json()
        return points

    async def set_up_kiosks(self) -> dict[District, list[str]]:
        """A kiosk at every open KVIK point; returns the KVIK entries per district."""
        entries: dict[District, list[str]] = {}
        for entry in await self.kvik_points():
            entry_id, district = entry["entry_id"], District(entry["district"])
            kiosk_id = f"sim-{entry_id}"[:64]
            token = await self.register_kiosk(kiosk_id, entry_id)
            self.kiosks[entry_id] = Kiosk(kiosk_id, entry_id, district, token)
            entries.setdefault(district, []).append(entry_id)
        return entries

    async def register_kiosk(self, kiosk_id: str, entry_id: str) -> str:
        """Register ``kiosk_id`` at ``entry_id``; its device token."""
        # Registered by an earlier run - or by an earlier attempt whose answer was lost:
        # either way a new token (the last one handed out is the one that works).
        created = await self._request(
            "POST",
            f"{self._endpoints.kvik}/kiosks",
            json={"kiosk_id": kiosk_id, "entry_id": entry_id},
            headers=self._admin,
            accept=(409,),
        )
        if created.status_code == 409:
            created = await self._request(
                "POST", f"{self._endpoints.kvik}/kiosks/{kiosk_id}/token", headers=self._admin
            )
        token: str = created.json()["token"]
        return token

    async def post_once(self, url: str, body: dict[str, Any], token: str) -> httpx.Response:
        """POST ``body`` with a kiosk's device ``token``, once: a live kiosk that gets no
        answer keeps the session in its backlog rather than retrying at once."""
        self.books.requests += 1
        return await self._http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})

    async def set_up_places(self) -> None:
        """The open citizen-service centres and mobile stops of the registry."""
        self.centres = await self._places("citizen_service_centre")
        self.stops = await self._places("mobile_stop")

    async def _places(self, kind: str) -> tuple[OpenPlace, ...]:
        response = await self._request(
            "GET", f"{self._endpoints.registry}/entries", params={"kind": kind, "status": "open"}
        )
        places = []
        for entry in response.json():
            if entry.get("district") is None:
                continue
            hours: dict[int, tuple[dt.time, dt.time]] = {}
            for interval in entry["opening_hours"]["weekly"]:
                opens = dt.time.fromisoformat(interval["opens"])
                closes = dt.time.fromisoformat(interval["closes"])
                before = hours.get(interval["weekday"])
                if before is not None:  # a lunch break: the day's first opening to last closing
                    opens, closes = min(before[0], opens), max(before[1], closes)
                hours[interval["weekday"]] = (opens, closes)
            places.append(
                OpenPlace(
                    entry_id=entry["entry_id"],
                    district=District(entry["district"]),
                    site_id=entry.get("site_id"),
                    services=tuple(entry["services"]),
                    hours=hours,
                )
            )
        return tuple(places)

    def plan(self, day: dt.date, start: dt.date, entries: dict[District, list[str]]) -> DayPlan:
        """The traffic of ``day`` at the places set up."""
        return plan_day(day, start, entries, self._seed, self.centres, self.stops)

    async def send_day(self, plan: DayPlan) -> None:
        """Upload a day's sessions (per kiosk, in batches), its two intake files, each centre's
        desk file and the day's mobile visits."""
        uploads = [
            self._upload(self.kiosks[entry_id], sessions[start : start + BATCH], plan.day)
            for entry_id, sessions in plan.sessions.items()
            for start in range(0, len(sessions), BATCH)
            if sessions
        ]
        uploads.append(self._intake("digital_platform", plan.day, plan.digital))
        uploads.append(self._intake("contact_centre", plan.day, plan.phone))
        uploads.extend(
            self._desk_file(entry_id, plan.day, tickets) for entry_id, tickets in plan.desk.items()
        )
        uploads.extend(self._mobile_visit(visit, plan.day) for visit in plan.mobile)
        await asyncio.gather(*uploads)

    async def _desk_file(self, entry_id: str, day: dt.date, tickets: list[DeskTicket]) -> None:
        """A centre's tickets of ``day`` as its queue system's daily file (replaces any earlier
        file, so a retry is safe). A 409 means the centre's day came in on the live feed (an
        earlier ``--realtime`` run): those tickets are counted already, and not booked here."""
        response = await self._request(
            "PUT",
            f"{self._endpoints.metrics}/desk/entries/{entry_id}/days/{day.isoformat()}",
            json={"tickets": [ticket_body(t) for t in tickets]},
            headers=self._queue,
            accept=(409,),
        )
        if response.status_code == 409:
            return
        self.books.desk_tickets += len(tickets)
        served = sum(1 for t in tickets if t.outcome is TicketOutcome.SERVED)
        self.books.desk_served += served
        self.books.add(day, served, "counter")

    async def _desk_ticket(self, entry_id: str, ticket: DeskTicket, day: dt.date) -> None:
        """One finished ticket on the live feed (idempotent by ticket id). A 409 means an
        earlier run today sent the ticket with other times (a realtime run re-times tickets to
        end when they are sent): it is counted already, and not booked here."""
        response = await self._request(
            "PUT",
            f"{self._endpoints.metrics}/desk/entries/{entry_id}/tickets/{ticket.ticket_id}",
            json=ticket_body(ticket, with_id=False),
            headers=self._queue,
            accept=(409,),
        )
        if response.status_code == 409:
            return
        self.books.desk_tickets += 1
        if ticket.outcome is TicketOutcome.SERVED:
            self.books.desk_served += 1
            self.books.add(day, 1, "counter")

    async def _mobile_visit(self, visit: MobileVisit, day: dt.date) -> None:
        """Log a visit that took place, then record its contacts (each idempotent by id)."""
        await self._request(
            "POST",
            f"{self._endpoints.mobile}/visits/held",
            json={
                "visit_id": visit.visit_id,
                "site_id": visit.site_id,
                "staff": list(visit.staff),
                "services": list(visit.services),
                "starts_at": visit.starts_at.isoformat(),
                "ends_at": visit.ends_at.isoformat(),
            },
            headers=self._planner,
        )
        self.books.mobile_visits += 1
        for contact in visit.contacts:
            await self._request(
                "POST",
                f"{self._endpoints.mobile}/visits/{visit.visit_id}/contacts",
                json={
                    "contact_id": contact.contact_id,
                    "service": contact.service,
                    "mode": contact.mode.value,
                    "onboarded_to_digital": contact.onboarded_to_digital,
                    "at": contact.at.isoformat(),
                },
                headers=self._planner,
            )
            self.books.mobile_contacts += 1
            self.books.add(day, 1, "mobile")

    async def _upload(self, kiosk: Kiosk, sessions: list[KioskSession], day: dt.date) -> None:
        """Upload ``sessions`` as one batch; the items without a definitive answer (a 5xx of
        their own) are sent again, until each is accepted or refused."""
        self.books.sessions_sent += len(sessions)
        waiting = sessions
        backoff = Backoff(initial=0.2, maximum=5.0)
        deadline = time.monotonic() + self._patience
        while True:
            response = await self._post(
                f"{self._endpoints.kvik}/sessions/batch",
                {"sessions": [session_body(kiosk.kiosk_id, s) for s in waiting]},
                {"Authorization": f"Bearer {kiosk.token}"},
            )
            again: list[KioskSession] = []
            for item, session in zip(response.json()["items"], waiting, strict=True):
                status = item["status"]
                if 200 <= status < 300:
                    self.books.accept_session(session, day, status)
                elif _definitive(status):
                    self.books.sessions_refused += 1
                else:
                    again.append(session)
            if not again:
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{len(again)} sessions got no definitive answer")
            self.books.items_resent += len(again)
            waiting = again
            await asyncio.sleep(backoff.next_delay())

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
        channel = "digital" if source == "digital_platform" else "phone"
        self.books.add(day, sum(line.self_service + line.assisted for line in lines), channel)

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        """POST until a definitive answer (see :meth:`_request`)."""
        return await self._request("POST", url, json=body, headers=headers)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request until it gets a definitive answer and return it: a 2xx, or a status
        in ``accept``; any other 4xx (but 408/429) raises. A failed connection, a timeout, a
        5xx, 408 or 429 is no answer: the same request again, with backoff, for ``patience``
        seconds. Safe because the hub's writes are idempotent (session, ticket, visit and
        contact ids, replacing intake and desk files, registration answered 409 the second
        time)."""
        backoff = Backoff(initial=0.2, maximum=5.0)
        deadline = time.monotonic() + self._patience
        while True:
            self.books.requests += 1
            try:
                response = await self._http.request(
                    method, url, json=json, params=params, headers=headers
                )
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    raise
            else:
                if _definitive(response.status_code):
                    if response.status_code >= 400 and response.status_code not in accept:
                        raise RuntimeError(f"{url} refused: {response.status_code} {response.text}")
                    return response
                if time.monotonic() >= deadline:
                    response.raise_for_status()
            self.books.retries += 1
            await asyncio.sleep(backoff.next_delay())

    async def replay(
        self,
        first: dt.date,
        last: dt.date,
        progress: Callable[[int, int], None] = lambda done, total: None,
        concurrency: int = 4,
    ) -> Books:
        """Send every day from ``first`` to ``last`` (inclusive) as fast as the hub accepts."""
        entries = await self.set_up_kiosks()
        await self.set_up_places()
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(day: dt.date) -> None:
            nonlocal done
            async with gate:
                await self.send_day(self.plan(day, first, entries))
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
            # The history takes a while: a stop (Ctrl-C on the hub) must not wait for it.
            history = asyncio.create_task(self.replay(start, today - dt.timedelta(days=1)))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({history, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if stop.is_set():
                history.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await history
                return self.books
            await history
        entries = await self.set_up_kiosks()
        await self.set_up_places()
        plan = self.plan(today, start, entries)
        pending: list[tuple[dt.datetime, str, KioskSession | DeskTicket]] = sorted(
            [(s.ended_at, entry_id, s) for entry_id, ss in plan.sessions.items() for s in ss]
            + [(t.ended_at, entry_id, t) for entry_id, ts in plan.desk.items() for t in ts],
            key=lambda item: item[0],
        )
        visits = sorted(plan.mobile, key=lambda visit: visit.ends_at)
        started = dt.datetime.now(dt.UTC)
        day_start = dt.datetime.combine(today, dt.time(9), COPENHAGEN).astimezone(dt.UTC)
        sent = 0
        while not stop.is_set() and sent < len(pending):
            clock = day_start + (dt.datetime.now(dt.UTC) - started) * speed
            due = [item for item in pending[sent:] if item[0] <= clock]
            for _, entry_id, item in due:
                # re-timed to end now: the hub refuses sessions and tickets from the future
                now = dt.datetime.now(dt.UTC)
                if isinstance(item, KioskSession):
                    await self._upload(self.kiosks[entry_id], [ending_at(item, now)], today)
                else:
                    await self._desk_ticket(entry_id, retimed_ticket(item, now), today)
            while visits and visits[0].ends_at <= clock and visits[0].ends_at <= now_utc():
                await self._mobile_visit(visits.pop(0), today)
            sent += len(due)
            progress(sent, len(pending))
            await pause(1.0, stop)
        return self.books


def now_utc() -> dt.datetime:
    """The current time (UTC)."""
    return dt.datetime.now(dt.UTC)


def retimed_ticket(ticket: DeskTicket, end: dt.datetime) -> DeskTicket:
    """``ticket`` moved so that it ends at ``end``, its waits and service time unchanged."""
    shift = end - ticket.ended_at
    return dataclasses.replace(
        ticket,
        issued_at=ticket.issued_at + shift,
        called_at=ticket.called_at + shift if ticket.called_at else None,
        served_at=ticket.served_at + shift if ticket.served_at else None,
        ended_at=end,
    )


def ticket_body(ticket: DeskTicket, with_id: bool = True) -> dict[str, Any]:
    """The queue system's JSON for one finished ticket (the live feed's body without its id,
    which is in the path; a daily file's line with it)."""
    body: dict[str, Any] = {
        "service": ticket.service,
        "desk_id": ticket.desk_id,
        "staff_id": ticket.staff_id,
        "issued_at": ticket.issued_at.isoformat(),
        "called_at": ticket.called_at.isoformat() if ticket.called_at else None,
        "served_at": ticket.served_at.isoformat() if ticket.served_at else None,
        "ended_at": ticket.ended_at.isoformat(),
        "outcome": ticket.outcome.value,
    }
    return {"ticket_id": ticket.ticket_id, **body} if with_id else body


def session_body(kiosk_id: str, session: KioskSession) -> dict[str, Any]:
    """The kvik service's JSON body for ``session`` posted by the kiosk ``kiosk_id``."""
    body: dict[str, Any] = {
        "session_id": session.session_id,
        "kiosk_id": kiosk_id,
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
