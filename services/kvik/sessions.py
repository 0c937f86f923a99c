"""The kvik service's use cases for whole sessions: one posted in one call (with the token check
in the same round trip when possible) or a backlog as a batch.

:func:`prepare` - a session checked by the domain, its stored result and its event - is also
what the end of a streamed session (``streaming``) records.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from services.contracts import EncodedEvent
from services.kvik import domain, metrics
from services.kvik.kiosks import Kiosk, Kiosks, inactive, not_own, rate_limited, unknown_token
from services.kvik.schemas import BatchResult, ItemResult, SessionIn, SessionResult
from services.kvik.settings import KvikSettings
from services.kvik.store import KvikStore, dumps
from services.plumbing.auth import hash_device_token
from services.plumbing.logging import get_logger
from services.plumbing.problems import FieldProblem, Problem, problem_type, validation_problem
from services.plumbing.redis_replies import reply_text

log = get_logger(__name__)

_SESSION = TypeAdapter(SessionIn)


def unknown_service(prefix: str) -> Problem:
    """422: the session names a service code not in the catalogue."""
    return validation_problem(
        [FieldProblem(field=f"{prefix}.service", message="is not in the catalogue")]
    )


def session_conflict() -> Problem:
    """409: a different session is recorded under this id."""
    return Problem(
        409,
        "session-conflict",
        "Session conflict",
        detail="A different session with this id is recorded; a retry must send the same body.",
    )


def validation_problems(error: ValidationError, prefix: str) -> list[FieldProblem]:
    """A pydantic error as field problems, their paths under ``prefix``."""
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


def session_limits(settings: KvikSettings) -> domain.Limits:
    """The time limits a session is checked against."""
    return domain.Limits(
        clock_skew=dt.timedelta(seconds=settings.clock_skew_seconds),
        max_duration=dt.timedelta(seconds=settings.max_session_seconds),
    )


def prepare(
    kiosk: Kiosk,
    body: SessionIn,
    now: dt.datetime,
    prefix: str,
    limits: domain.Limits,
    source: str,
) -> tuple[domain.Session, str, EncodedEvent]:
    """Check a whole session and build its result and its encoded event; raises Problem.

    ``body`` was validated at the edge; the payload is validated once more (its own rules
    and the personal-data guard), the envelope not again.
    """
    if body.kiosk_id != kiosk.kiosk_id:
        raise not_own(body.kiosk_id)
    session = _session_of(body)
    problems = domain.session_problems(session, now, limits, prefix)
    if problems:
        raise validation_problem(problems)
    try:
        event = domain.session_record(session, kiosk.entry_id, kiosk.district, source)
    except ValidationError as error:
        # The contract's own guard (a code that looks like a CPR number, for one).
        raise validation_problem(validation_problems(error, prefix)) from None
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


def _answer(reply: Any, prefix: str, result: str) -> tuple[int, str]:
    """The answer to a record script's reply, as the stored result's JSON (a
    :class:`SessionResult`, written by :func:`prepare`); ``result`` is what this request
    stored if it was the first (the script sends back only a replay's stored result)."""
    status, *rest = [reply_text(part) for part in reply]
    if status == "created":
        return 201, result
    if status == "replay":
        return 200, rest[0]
    if status == "conflict":
        raise session_conflict()
    if status == "inactive":
        raise inactive()
    if status == "unknown-service":
        raise unknown_service(prefix)
    raise RuntimeError(f"unexpected answer from the record script: {status}")


class Sessions:
    """Whole sessions, single or in a batch, on one store."""

    def __init__(
        self,
        store: KvikStore,
        settings: KvikSettings,
        kiosks: Kiosks,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store = store
        self.settings = settings
        self.kiosks = kiosks
        self.clock = clock
        self.source = settings.source
        self.limits = session_limits(settings)

    def _prepare(
        self, kiosk: Kiosk, body: SessionIn, now: dt.datetime, prefix: str
    ) -> tuple[domain.Session, str, EncodedEvent]:
        return prepare(kiosk, body, now, prefix, self.limits, self.source)

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
            status, answer = _answer(reply, "body", result)
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
        guess = self.kiosks.hint(body.kiosk_id)
        if guess is None:
            return await self.record(await self.kiosks.authenticate(token), body)
        try:
            session, result, event = self._prepare(guess, body, self.clock(), "body")
        except Problem:
            await self.kiosks.authenticate(token)  # who asks comes first: 401/429 before 422
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
            raise unknown_token()
        if outcome == "revoked":
            raise inactive()
        if outcome == "limited":
            raise rate_limited(int(reply[1]))
        if outcome in {"forbidden", "stale"}:
            # Another kiosk's token, or the kiosk's entry changed: the full path decides.
            self.kiosks.forget(body.kiosk_id)
            return await self.record(await self.kiosks.authenticate(token), body)
        try:
            status, answer = _answer(reply, "body", result)
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
                    problem = validation_problem(validation_problems(error, prefix))
                    results[index] = _failed(index, session_id, problem)
                    continue
                except Problem as problem:
                    results[index] = _failed(index, str(body.session_id), problem)
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
                results[index] = _failed(index, session_id, failure)
                continue
            try:
                status, answer = _answer(reply, f"body.sessions[{index}]", stored)
            except Problem as refused:
                results[index] = _failed(index, session_id, refused)
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


def _failed(index: int, session_id: Any, problem: Problem) -> ItemResult:
    return ItemResult(
        index=index,
        session_id=str(session_id) if isinstance(session_id, str | uuid.UUID) else None,
        status=problem.status,
        problem=problem_body(problem),
    )
