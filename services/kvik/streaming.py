"""The kvik service's use cases for streamed sessions: start, steps and end as they happen (in
any order; an end may overtake its start), and the idle sweeper that abandons a session whose
kiosk fell silent."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from services.contracts import SessionOutcome
from services.contracts.reference import HelpChannel
from services.kvik import domain, metrics, quarantine
from services.kvik.kiosks import ATTEMPTS, Kiosk, check_own, inactive, not_own
from services.kvik.schemas import (
    SessionEndIn,
    SessionIn,
    SessionOpened,
    SessionResult,
    SessionStartIn,
    SessionStepsIn,
)
from services.kvik.sessions import prepare, session_conflict, session_limits, unknown_service
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore, Outcome, dumps
from services.plumbing.problems import FieldProblem, Problem, validation_problem


def _session_ended() -> Problem:
    return Problem(
        409,
        "session-ended",
        "Session ended",
        detail="The session has ended (or was abandoned after the idle timeout); it takes no "
        "more changes.",
    )


def _refuse(status: str) -> None:
    """Raise the problem a streaming script's refusal stands for (nothing for a success)."""
    if status == "forbidden":
        raise not_own("")
    if status == "conflict":
        raise session_conflict()
    if status == "ended":
        raise _session_ended()
    if status == "inactive":
        raise inactive()
    if status == "unknown-service":
        raise unknown_service("body")


def _opened(session_id: uuid.UUID, outcome: Outcome) -> tuple[int, SessionOpened]:
    """The answer to a start or steps call: 201 when it created the session, else 200, with
    whether the session has ended (an end may have overtaken it)."""
    _refuse(outcome.status)
    state = "ended" if outcome.result == "ended" else "open"
    status = 201 if outcome.status == "created" else 200
    return status, SessionOpened(session_id=str(session_id), state=state)


class StreamedSessions:
    """Streamed sessions and their idle sweeper, on one store."""

    def __init__(
        self, store: KvikStore, settings: KvikSettings, clock: Callable[[], dt.datetime]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.source = settings.source
        self.limits = session_limits(settings)

    async def start(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionStartIn
    ) -> tuple[int, SessionOpened]:
        """Open a streamed session: 201, or 200 for the same start again."""
        check_own(kiosk, body.kiosk_id)
        now = self.clock()
        problems = domain.time_problems(body.started_at, None, now, self.limits)
        if problems:
            raise validation_problem(problems)
        outcome = await self.store.start_session(
            session_id=str(session_id),
            kiosk_id=kiosk.kiosk_id,
            entry_id=kiosk.entry_id,
            service=body.service,
            started_at=body.started_at,
            start_fp=domain.start_fingerprint(kiosk.kiosk_id, body.service, body.started_at),
            now=now,
            ttl=self.settings.session_ttl_seconds,
        )
        return _opened(session_id, outcome)

    async def steps(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionStepsIn
    ) -> tuple[int, SessionOpened]:
        """Add streamed steps; steps may come before the start and in any order."""
        check_own(kiosk, body.kiosk_id)
        now = self.clock()
        problems = [
            problem
            for index, step in enumerate(body.steps)
            for problem in domain.time_problems(
                None, step.at, now, self.limits, f"body.steps[{index}]"
            )
        ]
        if len({step.seq for step in body.steps}) != len(body.steps):
            problems.append(FieldProblem(field="body.steps", message="names a seq twice"))
        if problems:
            raise validation_problem(problems)
        outcome = await self.store.add_steps(
            session_id=str(session_id),
            kiosk_id=kiosk.kiosk_id,
            steps=[(step.seq, step.code, step.at) for step in body.steps],
            now=now,
            ttl=self.settings.session_ttl_seconds,
        )
        return _opened(session_id, outcome)

    async def end(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionEndIn
    ) -> tuple[int, SessionResult]:
        """End a streamed session and publish its event; an end may overtake its start."""
        check_own(kiosk, body.kiosk_id)
        fingerprint = "end:" + domain.digest(
            [str(session_id), body.model_dump(mode="json", exclude_none=True)]
        )
        for _ in range(ATTEMPTS):
            stored = await self.store.session(str(session_id))
            if stored.get("kiosk_id", kiosk.kiosk_id) != kiosk.kiosk_id:
                raise not_own(body.kiosk_id)
            if stored.get("state") == "ended":
                if stored.get("fingerprint") == fingerprint:
                    return 200, SessionResult.model_validate_json(stored["result"])
                raise _session_ended()
            session = _ended_session(str(session_id), kiosk, stored, body)
            _, result, event = prepare(
                kiosk,
                SessionIn(
                    session_id=session_id,
                    kiosk_id=kiosk.kiosk_id,
                    service=session.service,
                    started_at=session.started_at,
                    ended_at=session.ended_at,
                    steps=list(session.steps),
                    outcome=session.outcome,
                    help=session.help,
                    referred_to=session.referred_to,
                ),
                self.clock(),
                "body",
                self.limits,
                self.source,
            )
            outcome = await self.store.end_session(
                session_id=str(session_id),
                kiosk_id=kiosk.kiosk_id,
                expected_rev=stored.get("rev", "0"),
                fingerprint=fingerprint,
                result=result,
                service=session.service,
                start_fp=domain.start_fingerprint(
                    kiosk.kiosk_id, session.service, session.started_at
                ),
                started_at=session.started_at,
                event=event,
                ttl=self.settings.session_ttl_seconds,
            )
            if outcome.status == "retry":
                continue  # a step or start came in meanwhile: merge it and try again
            _refuse(outcome.status)
            metrics.SESSIONS.labels(
                "stream", "created" if outcome.status == "created" else "replayed"
            ).inc()
            assert outcome.result is not None
            return (201 if outcome.status == "created" else 200), (
                SessionResult.model_validate_json(outcome.result)
            )
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Retry the end.")

    async def sweep_once(self, now: dt.datetime | None = None) -> int:
        """Abandon the sessions idle for the timeout; returns how many this call abandoned.

        Two sweepers may see the same idle session; the store's claim script lets exactly one
        of them end it and stage the abandoned event. Each session on its own: one that cannot
        be ended (a record that does not parse, an event its own guard refuses) is quarantined
        and the others are still swept.
        """
        now = now or self.clock()
        cutoff = now - dt.timedelta(seconds=self.settings.idle_timeout_seconds)
        items = [
            quarantine.Item(session_id, self.store.open_key, self.store.session_key(session_id))
            for session_id in await self.store.idle_sessions(cutoff)
        ]

        async def sweep(item: quarantine.Item) -> bool:
            return await self._sweep(item.member, cutoff)

        return await quarantine.each(self.store, quarantine.Loop.SWEEPER, items, sweep, self.clock)

    async def _sweep(self, session_id: str, cutoff: dt.datetime) -> bool:
        """Abandon one idle session (or forget one that never started); True if abandoned."""
        stored = await self.store.session(session_id)
        if stored.get("state") != "open" or not stored.get("start_fp"):
            await self.store.drop_orphan(session_id, stored.get("rev", ""), cutoff)
            return False
        kiosk = await self.store.kiosk(stored["kiosk_id"])
        entry = await self.store.entry(stored["entry_id"])
        district = (entry.district if entry else "") or (kiosk or {}).get("district", "")
        started_at = dt.datetime.fromisoformat(stored["started_at"])
        last_ms = int(stored.get("last_at_ms", "0"))
        ended_at = max(started_at, dt.datetime.fromtimestamp(last_ms / 1000, dt.UTC))
        streamed = {int(k[2:]): v for k, v in stored.items() if k.startswith("s:")}
        session = domain.Session(
            session_id=session_id,
            kiosk_id=stored["kiosk_id"],
            service=stored["service"],
            started_at=started_at,
            ended_at=ended_at,
            steps=domain.merge_steps(streamed, None),
            outcome=SessionOutcome.ABANDONED,
            help=HelpChannel.NONE,
        )
        event = domain.session_event(session, stored["entry_id"], district, self.source)
        result = dumps(
            {
                "session_id": session_id,
                "outcome": SessionOutcome.ABANDONED.value,
                "event_id": str(event.id),
                "district": district,
                "entry_id": stored["entry_id"],
            }
        )
        if not await self.store.abandon(session_id, stored["rev"], cutoff, result, event):
            return False
        metrics.SESSIONS.labels("sweeper", "created").inc()
        return True


def _ended_session(
    session_id: str, kiosk: Kiosk, stored: dict[str, str], body: SessionEndIn
) -> domain.Session:
    """The whole session an end completes: what was streamed, merged with the end's body."""
    service = stored.get("service")
    started_raw = stored.get("started_at")
    started_at = dt.datetime.fromisoformat(started_raw) if started_raw else None
    if service and body.service and body.service != service:
        raise session_conflict()
    if started_at and body.started_at and body.started_at != started_at:
        raise session_conflict()
    service = service or body.service
    started_at = started_at or body.started_at
    if service is None or started_at is None:
        missing = [
            FieldProblem(
                field=f"body.{name}",
                message="is required: the session's start has not arrived",
            )
            for name, value in (("service", service), ("started_at", started_at))
            if value is None
        ]
        raise validation_problem(missing)
    streamed = {int(name[2:]): value for name, value in stored.items() if name.startswith("s:")}
    return domain.Session(
        session_id=session_id,
        kiosk_id=kiosk.kiosk_id,
        service=service,
        started_at=started_at,
        ended_at=body.ended_at,
        steps=domain.merge_steps(streamed, body.steps),
        outcome=body.outcome,
        help=body.help,
        referred_to=body.referred_to,
    )
