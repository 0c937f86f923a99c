"""The kvik service's use cases: validate with the domain, write through the store, answer with
results or problems. The HTTP routes (``api``) and the background loops call these."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from services.contracts import EncodedEvent, EventType, HelpRequested, SessionOutcome
from services.contracts.guard import find_cpr
from services.contracts.reference import EntryKind, EntryStatus, HelpChannel
from services.kvik import domain, metrics, quarantine
from services.kvik.schemas import (
    BatchResult,
    HeartbeatOut,
    HelpIn,
    HelpOut,
    ItemResult,
    KioskAuditRecord,
    KioskCredentials,
    KioskOut,
    KioskState,
    SessionEndIn,
    SessionIn,
    SessionOpened,
    SessionResult,
    SessionStartIn,
    SessionStepsIn,
)
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore, dumps, to_ms
from services.plumbing.auth import Principal, hash_device_token, new_device_token
from services.plumbing.logging import get_logger
from services.plumbing.problems import FieldProblem, Problem, problem_type, validation_problem
from services.plumbing.redis_replies import reply_text

log = get_logger(__name__)

_SESSION = TypeAdapter(SessionIn)
_ATTEMPTS = 5
HELP_TTL_SECONDS = 7 * 24 * 3600


def utc_now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Kiosk:
    """The kiosk a request comes from (its device token verified)."""

    kiosk_id: str
    entry_id: str
    district: str


def _validation_problems(error: ValidationError, prefix: str) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        path = prefix
        loc = list(item["loc"])
        if not loc and "field" in item.get("ctx", {}):
            # A model-level check of the contract (the personal-data guard) names its field.
            loc = [str(item["ctx"]["field"])]
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        problems.append(FieldProblem(field=path, message=str(item["msg"])))
    return problems


def _unknown_token() -> Problem:
    return Problem(
        401,
        "token-invalid",
        "Token invalid",
        detail="The device token is unknown.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        refusal="unknown device token",
    )


def _limited(retry_after_ms: int) -> Problem:
    metrics.RATE_LIMITED.inc()
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        detail="This kiosk sends faster than its rate limit; retry after the pause.",
        headers={"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))},
    )


def _not_own(kiosk_id: str) -> Problem:
    return Problem(
        403,
        "other-kiosk",
        "Not your kiosk",
        detail="A kiosk may only post for itself; kiosk_id must be the token's kiosk.",
        refusal="other kiosk",
    )


def _audit(action: str, actor: str, now: dt.datetime) -> str:
    """One audit record of an administrator's token change, as stored (JSON)."""
    return KioskAuditRecord.model_validate(
        {"action": action, "actor": actor, "at": now.isoformat()}
    ).model_dump_json()


def _inactive() -> Problem:
    return Problem(
        401,
        "kiosk-inactive",
        "Kiosk inactive",
        detail="The kiosk's token was revoked; an administrator must issue a new one.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        refusal="revoked device token",
    )


def _unknown_service(prefix: str) -> Problem:
    return validation_problem(
        [FieldProblem(field=f"{prefix}.service", message="is not in the catalogue")]
    )


def _session_conflict() -> Problem:
    return Problem(
        409,
        "session-conflict",
        "Session conflict",
        detail="A different session with this id is recorded; a retry must send the same body.",
    )


def _session_ended() -> Problem:
    return Problem(
        409,
        "session-ended",
        "Session ended",
        detail="The session has ended (or was abandoned after the idle timeout); it takes no "
        "more changes.",
    )


def problem_body(problem: Problem) -> dict[str, object]:
    """A problem as the JSON object a batch item carries."""
    body: dict[str, object] = {
        "type": problem_type(problem.slug),
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = [e.model_dump() for e in problem.errors]
    return body


def _session_of(body: SessionIn) -> domain.Session:
    return domain.Session(
        session_id=str(body.session_id),
        kiosk_id=body.kiosk_id,
        service=body.service,
        started_at=body.started_at,
        ended_at=body.ended_at,
        steps=tuple(body.steps),
        outcome=body.outcome,
        help=body.help,
        referred_to=body.referred_to,
    )


class KvikService:
    """Kiosks, sessions and staff help, on one store."""

    def __init__(
        self,
        store: KvikStore,
        settings: KvikSettings,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.source = settings.source
        # kiosk -> (entry, district) as the last token check found them. Only a guess to build
        # a session's event before the one-round-trip post, which re-checks token and entry;
        # never used to decide who a caller is.
        self._hints: dict[str, tuple[str, str]] = {}
        self.limits = domain.Limits(
            clock_skew=dt.timedelta(seconds=settings.clock_skew_seconds),
            max_duration=dt.timedelta(seconds=settings.max_session_seconds),
        )

    # --- kiosks -------------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Kiosk:
        """The kiosk of a device token, one token taken from its bucket; else 401 or 429."""
        auth = await self.store.authenticate(
            hash_device_token(token), self.settings.rate_per_second, self.settings.rate_burst
        )
        if auth.outcome == "unknown":
            raise _unknown_token()
        if auth.outcome == "revoked":
            raise _inactive()
        if auth.outcome == "limited":
            raise _limited(auth.retry_after_ms)
        if len(self._hints) > 10_000:
            self._hints.clear()  # kiosks are hundreds; this only bounds a misuse
        self._hints[auth.kiosk_id] = (auth.entry_id, auth.district)
        return Kiosk(auth.kiosk_id, auth.entry_id, auth.district)

    async def register(self, entry_id: str, kiosk_id: str | None) -> KioskCredentials:
        """Register a kiosk at an open KVIK point; the token is in the answer and nowhere else."""
        kiosk_id = kiosk_id or f"kiosk-{uuid.uuid4().hex[:12]}"
        for _ in range(_ATTEMPTS):
            entry = await self.store.entry(entry_id)
            problems = []
            if entry is None or entry.kind != EntryKind.KVIK_POINT.value:
                problems.append(
                    FieldProblem(field="body.entry_id", message="is not a known KVIK point")
                )
            elif entry.status != EntryStatus.OPEN.value:
                problems.append(FieldProblem(field="body.entry_id", message="is not open"))
            elif not entry.district:
                problems.append(FieldProblem(field="body.entry_id", message="names no district"))
            if problems or entry is None:
                raise validation_problem(problems)
            token = new_device_token()
            now = self.clock()
            event = domain.kiosk_event(
                EventType.KVIK_KIOSK_REGISTERED,
                kiosk_id,
                entry.entry_id,
                entry.district,
                now,
                self.source,
            )
            outcome = await self.store.register_kiosk(
                kiosk_id, entry, hash_device_token(token), now, event
            )
            if outcome == "exists":
                raise Problem(
                    409, "already-exists", "Already exists", detail="The kiosk id is taken."
                )
            if outcome == "ok":
                return KioskCredentials(
                    kiosk_id=kiosk_id, entry_id=entry.entry_id, district=entry.district, token=token
                )
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Try again.")

    async def rotate(self, kiosk_id: str, actor: str) -> KioskCredentials:
        """A new token for an active kiosk; the old one stops working at once. A revoked kiosk
        is refused (409): it comes back only through :meth:`reinstate`."""
        token = new_device_token()
        now = self.clock()
        outcome = await self.store.rotate_token(
            kiosk_id, hash_device_token(token), now, _audit("rotate", actor, now)
        )
        if outcome == "revoked":
            raise Problem(
                409,
                "kiosk-revoked",
                "Kiosk revoked",
                detail=f"Kiosk {kiosk_id} is revoked; reinstate it "
                f"(POST /kiosks/{kiosk_id}/reinstate) to issue a new token.",
            )
        if outcome != "ok":
            raise Problem(404, None, "Not Found", detail=f"No kiosk {kiosk_id}.")
        view = await self.kiosk(kiosk_id)
        return KioskCredentials(
            kiosk_id=kiosk_id, entry_id=view.entry_id, district=view.district, token=token
        )

    async def reinstate(self, kiosk_id: str, actor: str) -> KioskCredentials:
        """Bring a revoked kiosk back with a new token, recorded in its audit list; a kiosk
        that is not revoked is a 409."""
        token = new_device_token()
        now = self.clock()
        outcome = await self.store.reinstate(
            kiosk_id, hash_device_token(token), now, _audit("reinstate", actor, now)
        )
        if outcome == "active":
            raise Problem(
                409,
                "kiosk-active",
                "Kiosk not revoked",
                detail=f"Kiosk {kiosk_id} is active; only a revoked kiosk is reinstated.",
            )
        if outcome != "ok":
            raise Problem(404, None, "Not Found", detail=f"No kiosk {kiosk_id}.")
        view = await self.kiosk(kiosk_id)
        return KioskCredentials(
            kiosk_id=kiosk_id, entry_id=view.entry_id, district=view.district, token=token
        )

    async def revoke(self, kiosk_id: str, actor: str) -> KioskOut:
        """Revoke a kiosk's token: refused from the next request on."""
        now = self.clock()
        if await self.store.revoke(kiosk_id, _audit("revoke", actor, now)) != "ok":
            raise Problem(404, None, "Not Found", detail=f"No kiosk {kiosk_id}.")
        return await self.kiosk(kiosk_id)

    async def kiosk_audit(self, kiosk_id: str) -> list[KioskAuditRecord]:
        """The administrators' token changes of a kiosk, oldest first (404 for no kiosk)."""
        await self.kiosk(kiosk_id)
        return [
            KioskAuditRecord.model_validate_json(item)
            for item in await self.store.kiosk_audit(kiosk_id)
        ]

    async def kiosk(self, kiosk_id: str) -> KioskOut:
        """One kiosk as administrators see it."""
        raw = await self.store.kiosk(kiosk_id)
        if raw is None:
            raise Problem(404, None, "Not Found", detail=f"No kiosk {kiosk_id}.")
        online = raw.get("online")
        return KioskOut(
            kiosk_id=kiosk_id,
            entry_id=raw["entry_id"],
            district=raw["district"],
            status=raw["status"],
            registered_at=raw["registered_at"],
            online=None if online is None else online == "1",
            software_version=raw.get("software_version"),
            state=raw.get("state"),
            last_seen=raw.get("last_seen"),
            token_issued_at=raw.get("token_issued_at", raw["registered_at"]),
        )

    async def heartbeat(self, kiosk: Kiosk, kiosk_id: str, body: KioskState) -> HeartbeatOut:
        """Record a heartbeat; the first one after silence (or ever) brings the kiosk online."""
        if kiosk_id != kiosk.kiosk_id:
            raise _not_own(kiosk_id)
        now = self.clock()
        event = domain.kiosk_event(
            EventType.KVIK_KIOSK_ONLINE,
            kiosk.kiosk_id,
            kiosk.entry_id,
            kiosk.district,
            now,
            self.source,
        )
        outcome = await self.store.heartbeat(
            kiosk.kiosk_id, body.software_version, body.state, now, event
        )
        if outcome == "inactive":
            raise _inactive()
        if outcome == "online":
            metrics.KIOSK_TRANSITIONS.labels("online").inc()
        return HeartbeatOut(
            kiosk_id=kiosk.kiosk_id,
            online=True,
            came_online=outcome == "online",
            next_within_seconds=self.settings.heartbeat_interval_seconds,
        )

    async def check_liveness_once(self, now: dt.datetime | None = None) -> int:
        """Flip kiosks silent for the missed heartbeats, while their entry is open, offline.

        Safe with any number of replicas running it: the store's script flips a kiosk only if
        it is still online and still silent, so exactly one offline event is staged.
        """
        now = now or self.clock()
        silence = dt.timedelta(
            seconds=self.settings.heartbeat_interval_seconds * self.settings.missed_heartbeats
        )
        cutoff = now - silence
        silent = dict(await self.store.silent_kiosks(cutoff))

        async def check(item: quarantine.Item) -> bool:
            return await self._check_liveness(item.member, silent[item.member], now, cutoff)

        # Each kiosk on its own: one whose record cannot be read is quarantined, not the round.
        items = [quarantine.Item(kiosk_id, self.store.seen_key) for kiosk_id in silent]
        return await quarantine.each(self.store, quarantine.Loop.LIVENESS, items, check, self.clock)

    async def _check_liveness(
        self, kiosk_id: str, seen_ms: int, now: dt.datetime, cutoff: dt.datetime
    ) -> bool:
        """Flip one silent kiosk offline if it is due; True if this call flipped it."""
        silence = now - cutoff
        raw = await self.store.kiosk(kiosk_id)
        if raw is None or raw.get("online") != "1":
            return False
        entry = await self.store.entry(raw["entry_id"])
        if entry is None or entry.hours is None:
            return False  # without opening hours no one can say the kiosk should be up
        last_seen = dt.datetime.fromtimestamp(seen_ms / 1000, dt.UTC)
        if not domain.offline_due(last_seen, now, silence, entry.hours):
            return False
        event = domain.kiosk_event(
            EventType.KVIK_KIOSK_OFFLINE,
            kiosk_id,
            raw["entry_id"],
            entry.district or raw["district"],
            now,
            self.source,
        )
        if not await self.store.mark_offline(kiosk_id, cutoff, event):
            return False
        metrics.KIOSK_TRANSITIONS.labels("offline").inc()
        return True

    # --- sessions: one call and batch ---------------------------------------------------------

    def _prepare(
        self, kiosk: Kiosk, body: SessionIn, now: dt.datetime, prefix: str
    ) -> tuple[domain.Session, str, EncodedEvent]:
        """Check a whole session and build its result and its encoded event; raises Problem.

        ``body`` was validated at the edge; the payload is validated once more (its own rules
        and the personal-data guard), the envelope not again.
        """
        if body.kiosk_id != kiosk.kiosk_id:
            raise _not_own(body.kiosk_id)
        session = _session_of(body)
        problems = domain.session_problems(session, now, self.limits, prefix)
        if problems:
            raise validation_problem(problems)
        try:
            event = domain.session_record(session, kiosk.entry_id, kiosk.district, self.source)
        except ValidationError as error:
            # The contract's own guard (a code that looks like a CPR number, for one).
            raise validation_problem(_validation_problems(error, prefix)) from None
        result = dumps(
            {
                "session_id": session.session_id,
                "outcome": session.outcome.value,
                "event_id": str(event.id),
                "district": kiosk.district,
                "entry_id": kiosk.entry_id,
            }
        )
        return session, result, event

    def _answer(self, reply: Any, prefix: str, result: str) -> tuple[int, str]:
        """The answer to a record script's reply, as the stored result's JSON (a
        :class:`SessionResult`, written by :meth:`_prepare`); ``result`` is what this request
        stored if it was the first (the script sends back only a replay's stored result)."""
        status, *rest = [reply_text(part) for part in reply]
        if status == "created":
            return 201, result
        if status == "replay":
            return 200, rest[0]
        if status == "conflict":
            raise _session_conflict()
        if status == "inactive":
            raise _inactive()
        if status == "unknown-service":
            raise _unknown_service(prefix)
        raise RuntimeError(f"unexpected answer from the record script: {status}")

    async def record(self, kiosk: Kiosk, body: SessionIn) -> tuple[int, str]:
        """Record a whole session: 201 the first time, 200 with the same result for a retry.

        The result is the JSON of a :class:`SessionResult`, as stored: a retry gets the very
        bytes the first answer had."""
        session, result, event = self._prepare(kiosk, body, self.clock(), "body")
        reply = await self.store.record_session(
            None,
            session_id=session.session_id,
            kiosk_id=kiosk.kiosk_id,
            service=session.service,
            fingerprint=session.fingerprint(),
            result=result,
            event=event,
            ttl=self.settings.session_ttl_seconds,
        )
        try:
            status, answer = self._answer(reply, "body", result)
        except Problem:
            metrics.SESSIONS.labels("single", "refused").inc()
            raise
        metrics.SESSIONS.labels("single", "created" if status == 201 else "replayed").inc()
        return status, answer

    async def record_with_token(self, token: str, body: SessionIn) -> tuple[int, str]:
        """Record a whole session for the kiosk of ``token`` in one round trip when possible.

        The event needs the kiosk's entry and district, known from an earlier token check of
        this kiosk; the script checks the token, the rate and that entry and district are
        still those, and records. Without such a guess, or when it is stale, this is a token
        check and :meth:`record` - two round trips, the same answers.
        """
        hint = self._hints.get(body.kiosk_id)
        if hint is None:
            return await self.record(await self.authenticate(token), body)
        guess = Kiosk(body.kiosk_id, *hint)
        try:
            session, result, event = self._prepare(guess, body, self.clock(), "body")
        except Problem:
            await self.authenticate(token)  # who asks comes first: 401/429 before 422
            raise
        reply = await self.store.record_session_as(
            hash_device_token(token),
            self.settings.rate_per_second,
            self.settings.rate_burst,
            session_id=session.session_id,
            kiosk_id=guess.kiosk_id,
            entry_id=guess.entry_id,
            district=guess.district,
            service=session.service,
            fingerprint=session.fingerprint(),
            result=result,
            event=event,
            ttl=self.settings.session_ttl_seconds,
        )
        outcome = reply[0]
        if outcome == "unknown":
            raise _unknown_token()
        if outcome == "revoked":
            raise _inactive()
        if outcome == "limited":
            raise _limited(int(reply[1]))
        if outcome in {"forbidden", "stale"}:
            # Another kiosk's token, or the kiosk's entry changed: the full path decides.
            self._hints.pop(body.kiosk_id, None)
            return await self.record(await self.authenticate(token), body)
        try:
            status, answer = self._answer(reply, "body", result)
        except Problem:
            metrics.SESSIONS.labels("single", "refused").inc()
            raise
        metrics.SESSIONS.labels("single", "created" if status == 201 else "replayed").inc()
        return status, answer

    async def record_batch(self, kiosk: Kiosk, items: Any) -> BatchResult:
        """Record up to ``max_batch_items`` sessions, each on its own, in one round trip.

        Every item is checked here; the good ones are sent as one pipeline of record scripts
        (each atomic by itself), so the whole batch costs a few round trips to Redis.
        """
        if not isinstance(items, list):
            raise validation_problem(
                [FieldProblem(field="body.sessions", message="must be a list")]
            )
        if len(items) > self.settings.max_batch_items:
            raise Problem(
                422,
                "batch-too-large",
                "Batch too large",
                detail=f"A batch holds at most {self.settings.max_batch_items} sessions; "
                f"this one has {len(items)}. Split it.",
            )
        metrics.BATCH_SIZE.observe(len(items))
        now = self.clock()
        results: list[ItemResult | None] = [None] * len(items)
        queued: list[tuple[int, str, str]] = []
        ttl = self.settings.session_ttl_seconds
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for index, raw in enumerate(items):
                prefix = f"body.sessions[{index}]"
                session_id = raw.get("session_id") if isinstance(raw, dict) else None
                try:
                    body = _SESSION.validate_python(raw)
                    session, result, event = self._prepare(kiosk, body, now, prefix)
                except ValidationError as error:
                    problem = validation_problem(_validation_problems(error, prefix))
                    results[index] = self._failed(index, session_id, problem)
                    continue
                except Problem as problem:
                    results[index] = self._failed(index, str(body.session_id), problem)
                    continue
                await self.store.record_session(
                    pipe,
                    session_id=session.session_id,
                    kiosk_id=kiosk.kiosk_id,
                    service=session.service,
                    fingerprint=session.fingerprint(),
                    result=result,
                    event=event,
                    ttl=ttl,
                )
                queued.append((index, session.session_id, result))
            replies = await pipe.execute(raise_on_error=False) if queued else []
        for (index, session_id, stored), reply in zip(queued, replies, strict=True):
            if isinstance(reply, Exception):
                log.error("batch item failed in Redis", error=repr(reply))
                failure = Problem(500, None, "Internal Server Error", detail="Retry this item.")
                results[index] = self._failed(index, session_id, failure)
                continue
            try:
                status, answer = self._answer(reply, f"body.sessions[{index}]", stored)
            except Problem as refused:
                results[index] = self._failed(index, session_id, refused)
                continue
            results[index] = ItemResult(
                index=index,
                session_id=session_id,
                status=status,
                result=SessionResult.model_validate_json(answer),
            )
        final = [r for r in results if r is not None]
        created = sum(1 for r in final if r.status == 201)
        replayed = sum(1 for r in final if r.status == 200)
        failed = len(final) - created - replayed
        metrics.SESSIONS.labels("batch", "created").inc(created)
        metrics.SESSIONS.labels("batch", "replayed").inc(replayed)
        metrics.SESSIONS.labels("batch", "refused").inc(failed)
        return BatchResult(created=created, replayed=replayed, failed=failed, items=final)

    @staticmethod
    def _failed(index: int, session_id: Any, problem: Problem) -> ItemResult:
        return ItemResult(
            index=index,
            session_id=str(session_id) if isinstance(session_id, str | uuid.UUID) else None,
            status=problem.status,
            problem=problem_body(problem),
        )

    # --- sessions: streamed -------------------------------------------------------------------

    def _check_own(self, kiosk: Kiosk, kiosk_id: str) -> None:
        if kiosk_id != kiosk.kiosk_id:
            raise _not_own(kiosk_id)

    async def start(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionStartIn
    ) -> tuple[int, SessionOpened]:
        """Open a streamed session: 201, or 200 for the same start again."""
        self._check_own(kiosk, body.kiosk_id)
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
        self._refuse(outcome.status)
        state = "ended" if outcome.result == "ended" else "open"
        return (201 if outcome.status == "created" else 200), SessionOpened(
            session_id=str(session_id),
            state=state,
        )

    def _refuse(self, status: str) -> None:
        if status == "forbidden":
            raise _not_own("")
        if status == "conflict":
            raise _session_conflict()
        if status == "ended":
            raise _session_ended()
        if status == "inactive":
            raise _inactive()
        if status == "unknown-service":
            raise _unknown_service("body")

    async def steps(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionStepsIn
    ) -> tuple[int, SessionOpened]:
        """Add streamed steps; steps may come before the start and in any order."""
        self._check_own(kiosk, body.kiosk_id)
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
        self._refuse(outcome.status)
        state = "ended" if outcome.result == "ended" else "open"
        return (201 if outcome.status == "created" else 200), SessionOpened(
            session_id=str(session_id),
            state=state,
        )

    async def end(
        self, kiosk: Kiosk, session_id: uuid.UUID, body: SessionEndIn
    ) -> tuple[int, SessionResult]:
        """End a streamed session and publish its event; an end may overtake its start."""
        self._check_own(kiosk, body.kiosk_id)
        fingerprint = "end:" + domain.digest(
            [str(session_id), body.model_dump(mode="json", exclude_none=True)]
        )
        for _ in range(_ATTEMPTS):
            stored = await self.store.session(str(session_id))
            if stored.get("kiosk_id", kiosk.kiosk_id) != kiosk.kiosk_id:
                raise _not_own(body.kiosk_id)
            if stored.get("state") == "ended":
                if stored.get("fingerprint") == fingerprint:
                    return 200, SessionResult.model_validate_json(stored["result"])
                raise _session_ended()
            session = self._ended_session(str(session_id), kiosk, stored, body)
            _, result, event = self._prepare(
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
            self._refuse(outcome.status)
            metrics.SESSIONS.labels(
                "stream", "created" if outcome.status == "created" else "replayed"
            ).inc()
            assert outcome.result is not None
            return (201 if outcome.status == "created" else 200), (
                SessionResult.model_validate_json(outcome.result)
            )
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Retry the end.")

    def _ended_session(
        self, session_id: str, kiosk: Kiosk, stored: dict[str, str], body: SessionEndIn
    ) -> domain.Session:
        service = stored.get("service")
        started_raw = stored.get("started_at")
        started_at = dt.datetime.fromisoformat(started_raw) if started_raw else None
        if service and body.service and body.service != service:
            raise _session_conflict()
        if started_at and body.started_at and body.started_at != started_at:
            raise _session_conflict()
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

    # --- staff help ---------------------------------------------------------------------------

    async def request_help(self, kiosk: Kiosk, body: HelpIn) -> tuple[int, HelpOut]:
        """Queue a help request with the entry's team: 201, or 200 for the same request again."""
        self._check_own(kiosk, body.kiosk_id)
        help_id = str(body.help_request_id)
        # The server's clock, not the kiosk's: the wait is measured from here to the answer.
        now = self.clock()
        event = domain.help_requested_event(
            help_id,
            kiosk.kiosk_id,
            kiosk.entry_id,
            body.session_id,
            body.channel,
            now,
            self.source,
        )
        fingerprint = domain.digest(
            [help_id, kiosk.kiosk_id, str(body.session_id), body.channel.value]
        )
        outcome = await self.store.request_help(
            help_id=help_id,
            kiosk_id=kiosk.kiosk_id,
            queue=domain.team_queue(kiosk.district),
            fingerprint=fingerprint,
            requested=event.data.model_dump_json(),
            requested_at=now,
            event=event,
            ttl=HELP_TTL_SECONDS,
        )
        if outcome == "conflict":
            raise Problem(
                409,
                "help-conflict",
                "Help request conflict",
                detail="A different help request with this id exists.",
            )
        if outcome == "inactive":
            raise _inactive()
        return (201 if outcome == "created" else 200), await self.help_request(help_id)

    async def help_request(self, help_id: str) -> HelpOut:
        """One help request."""
        raw = await self.store.help_request(help_id)
        if not raw:
            raise Problem(404, None, "Not Found", detail=f"No help request {help_id}.")
        return _help_out(help_id, raw)

    async def queue(self, queue: str) -> list[HelpOut]:
        """The waiting requests of a queue, longest waiting first."""
        if queue not in domain.queue_names():
            raise Problem(404, None, "Not Found", detail=f"No queue {queue}.")
        return [_help_out(row["id"], row) for row in await self.store.queue(queue)]

    async def take(self, help_id: str, staff: Principal) -> HelpOut:
        """Staff take a waiting request; the wait until now is measured (the time-to-help KPI).

        The request records ``staff.actor`` (the pseudonymous id), never the token's subject.
        """
        if find_cpr(staff.subject) is not None:
            # The subject itself is never stored, but a CPR-shaped one means the identity
            # provider hands out personal data as ids: the CPR guard holds for identity claims
            # as for bodies.
            raise validation_problem(
                [
                    FieldProblem(
                        field="token.sub",
                        message="looks like a CPR number; staff tokens must carry a "
                        "pseudonymous subject",
                    )
                ]
            )
        for _ in range(_ATTEMPTS):
            raw = await self.store.help_request(help_id)
            if not raw:
                raise Problem(404, None, "Not Found", detail=f"No help request {help_id}.")
            if raw["state"] != "waiting":
                raise Problem(
                    409, "already-taken", "Already taken", detail="Someone took it first."
                )
            requested = HelpRequested.model_validate_json(raw["requested"])
            answered_at = max(self.clock(), requested.requested_at)
            event = domain.help_answered_event(requested, answered_at, self.source)
            outcome = await self.store.take_help(
                help_id, raw["queue"], staff.actor, answered_at, event
            )
            if outcome == "retry":
                continue  # escalated meanwhile: take it from its new queue
            if outcome == "taken":
                raise Problem(
                    409, "already-taken", "Already taken", detail="Someone took it first."
                )
            taken = await self.help_request(help_id)
            if taken.wait_seconds is not None:
                metrics.HELP_WAIT.observe(taken.wait_seconds)
            return taken
        raise Problem(409, "changed-meanwhile", "Changed meanwhile", detail="Try again.")

    async def escalate_once(self, now: dt.datetime | None = None) -> int:
        """Move requests no team took within the limit to the contact centre's queue."""
        now = now or self.clock()
        cutoff = now - dt.timedelta(seconds=self.settings.help_escalate_after_seconds)
        moved = 0
        for queue in domain.queue_names():
            if queue == domain.CONTACT_CENTRE_QUEUE:
                continue

            async def escalate(item: quarantine.Item, queue: str = queue) -> bool:
                if not await self.store.escalate(
                    item.member, queue, domain.CONTACT_CENTRE_QUEUE, to_ms(cutoff)
                ):
                    return False
                metrics.HELP_ESCALATED.inc()
                return True

            # Each request on its own: one whose record breaks the move is quarantined.
            items = [
                quarantine.Item(help_id, self.store.queue_key(queue))
                for help_id in await self.store.overdue_help(queue, cutoff)
            ]
            moved += await quarantine.each(
                self.store, quarantine.Loop.ESCALATION, items, escalate, self.clock
            )
        return moved


def _help_out(help_id: str, raw: dict[str, str]) -> HelpOut:
    requested = HelpRequested.model_validate_json(raw["requested"])
    answered_ms = raw.get("answered_ms")
    answered_at = (
        dt.datetime.fromtimestamp(int(answered_ms) / 1000, dt.UTC) if answered_ms else None
    )
    wait = max(0.0, (int(answered_ms) - int(raw["requested_ms"])) / 1000) if answered_ms else None
    return HelpOut(
        help_request_id=help_id,
        kiosk_id=requested.kiosk_id,
        entry_id=requested.entry_id,
        session_id=requested.session_id,
        channel=requested.channel,
        queue=raw["queue"],
        state=raw["state"],
        requested_at=requested.requested_at.isoformat(),
        escalated=raw.get("escalated") == "1",
        answered_at=answered_at.isoformat() if answered_at else None,
        staff=raw.get("staff"),
        wait_seconds=wait,
    )
