"""The kvik service's rules: what a valid session is, which event a session becomes, when a
kiosk counts as offline, which queue a help request waits in. Pure functions; no I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.contracts import (
    CloudEvent,
    District,
    EncodedEvent,
    EventType,
    HelpAnswered,
    HelpChannel,
    HelpRequested,
    KioskOffline,
    KioskOnline,
    KioskRegistered,
    SessionAbandoned,
    SessionCompleted,
    SessionOutcome,
    SessionReferred,
    new_encoded_event,
    new_event,
)
from services.contracts.opening_hours import is_open_at
from services.contracts.payloads.registry import OpeningHours
from services.contracts.reference import Channel
from services.plumbing.problems import FieldProblem

CONTACT_CENTRE_QUEUE = "contact-centre"
"""Where help requests go when the local team has not taken them in time."""


@dataclass(frozen=True)
class Session:
    """A whole session as the service records it, however it arrived (one call, stream, batch)."""

    session_id: str
    kiosk_id: str
    service: str
    started_at: dt.datetime
    ended_at: dt.datetime
    steps: tuple[str, ...]
    outcome: SessionOutcome
    help: HelpChannel
    referred_to: Channel | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the session's content: equal for the same session sent again, however
        its JSON was spelled (key order, time zone of the timestamps)."""
        return digest(
            [
                self.session_id,
                self.kiosk_id,
                self.service,
                _utc(self.started_at),
                _utc(self.ended_at),
                list(self.steps),
                self.outcome.value,
                self.help.value,
                self.referred_to.value if self.referred_to else None,
            ]
        )


def start_fingerprint(kiosk_id: str, service: str, started_at: dt.datetime) -> str:
    """What identifies a session's start: the same start sent twice matches, another does not."""
    return digest([kiosk_id, service, _utc(started_at)])


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


def digest(parts: Any) -> str:
    """SHA-256 hex of the compact JSON of ``parts``."""
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Limits:
    """The bounds a session's times must keep (from the settings)."""

    clock_skew: dt.timedelta
    max_duration: dt.timedelta


def time_problems(
    started_at: dt.datetime | None,
    ended_at: dt.datetime | None,
    now: dt.datetime,
    limits: Limits,
    prefix: str = "body",
) -> list[FieldProblem]:
    """Times in the future beyond the clock skew, an end before the start, or too long."""
    problems: list[FieldProblem] = []
    latest = now + limits.clock_skew
    for name, value in (("started_at", started_at), ("ended_at", ended_at)):
        if value is not None and value > latest:
            problems.append(
                FieldProblem(
                    field=f"{prefix}.{name}",
                    message="is in the future by more than the allowed clock skew "
                    f"({int(limits.clock_skew.total_seconds())} s)",
                )
            )
    if started_at is not None and ended_at is not None:
        if ended_at < started_at:
            problems.append(
                FieldProblem(field=f"{prefix}.ended_at", message="is before started_at")
            )
        elif ended_at - started_at > limits.max_duration:
            hours = limits.max_duration.total_seconds() / 3600
            problems.append(
                FieldProblem(
                    field=f"{prefix}.ended_at",
                    message=f"makes the session longer than {hours:g} hours",
                )
            )
    return problems


def outcome_problems(
    outcome: SessionOutcome, referred_to: Channel | None, prefix: str = "body"
) -> list[FieldProblem]:
    """A referral names another channel; other outcomes name none."""
    if outcome is SessionOutcome.REFERRED:
        if referred_to is None:
            return [FieldProblem(field=f"{prefix}.referred_to", message="is required to refer")]
        if referred_to is Channel.KVIK:
            return [FieldProblem(field=f"{prefix}.referred_to", message="must be another channel")]
    elif referred_to is not None:
        return [FieldProblem(field=f"{prefix}.referred_to", message="only for outcome referred")]
    return []


def session_problems(
    session: Session, now: dt.datetime, limits: Limits, prefix: str = "body"
) -> list[FieldProblem]:
    """Every problem of a whole session, at once, so the kiosk fixes them in one round."""
    return [
        *time_problems(session.started_at, session.ended_at, now, limits, prefix),
        *outcome_problems(session.outcome, session.referred_to, prefix),
    ]


_SESSION_EVENTS: dict[SessionOutcome, EventType] = {
    SessionOutcome.COMPLETED: EventType.KVIK_SESSION_COMPLETED,
    SessionOutcome.ABANDONED: EventType.KVIK_SESSION_ABANDONED,
    SessionOutcome.REFERRED: EventType.KVIK_SESSION_REFERRED,
}


def session_payload(
    session: Session, entry_id: str, district: District | str
) -> SessionCompleted | SessionAbandoned | SessionReferred:
    """The payload a recorded session becomes, by outcome; validated, CPR guard included."""
    fields: dict[str, Any] = {
        "session_id": session.session_id,
        "kiosk_id": session.kiosk_id,
        "entry_id": entry_id,
        "district": district,
        "service": session.service,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "steps": session.steps,
        "help": session.help,
    }
    if session.outcome is SessionOutcome.COMPLETED:
        return SessionCompleted(**fields)
    if session.outcome is SessionOutcome.ABANDONED:
        return SessionAbandoned(**fields)
    return SessionReferred(**fields, referred_to=session.referred_to)


def session_event(
    session: Session, entry_id: str, district: District | str, source: str
) -> CloudEvent:
    """The event a recorded session becomes, by outcome, timed when the session ended.

    The event time is the kiosk's end time, not the arrival time, so a backlog uploaded today
    is counted on the day it happened.
    """
    payload = session_payload(session, entry_id, district)
    return new_event(
        _SESSION_EVENTS[session.outcome], payload, source=source, time=session.ended_at
    )


def session_record(
    session: Session, entry_id: str, district: District | str, source: str
) -> EncodedEvent:
    """:func:`session_event`, already encoded: the same event and bytes, for the post paths.

    The payload is validated once (with the personal-data guard); the envelope around it is
    not validated again (``new_encoded_event``) - it was the third validation of every post.
    """
    payload = session_payload(session, entry_id, district)
    return new_encoded_event(
        _SESSION_EVENTS[session.outcome], payload, source=source, time=session.ended_at
    )


def merge_steps(streamed: dict[int, str], final: Sequence[str] | None) -> tuple[str, ...]:
    """The session's steps: the end's full list if it sent one, else the streamed ones by seq."""
    if final is not None:
        return tuple(final)
    return tuple(code for _, code in sorted(streamed.items()))


# --- kiosks ----------------------------------------------------------------------------------


def kiosk_event(
    event_type: EventType, kiosk_id: str, entry_id: str, district: str, at: dt.datetime, source: str
) -> CloudEvent:
    """A kiosk registered / online / offline event."""
    model = {
        EventType.KVIK_KIOSK_REGISTERED: KioskRegistered,
        EventType.KVIK_KIOSK_ONLINE: KioskOnline,
        EventType.KVIK_KIOSK_OFFLINE: KioskOffline,
    }[event_type]
    payload = model(kiosk_id=kiosk_id, entry_id=entry_id, district=district, at=at)
    return new_event(event_type, payload, source=source, time=at)


def offline_due(
    last_seen: dt.datetime, now: dt.datetime, silence: dt.timedelta, hours: OpeningHours
) -> bool:
    """Whether a kiosk last heard of at ``last_seen`` is offline at ``now``.

    Offline means silent for ``silence`` (3 heartbeat intervals) while its entry is open: the
    entry must be open now and already at the start of that silence, so a kiosk switched off
    at night is not reported, nor one that has not had time to boot after opening. Open means
    the contract's rule, with a public holiday closed (the library a KVIK point stands in is).
    """
    if now - last_seen < silence:
        return False
    return is_open_at(hours, now) and is_open_at(hours, now - silence)


# --- staff help ------------------------------------------------------------------------------


def team_queue(district: str) -> str:
    """The queue of the citizen-service team responsible for entries in ``district``."""
    return f"team-{district}"


def queue_names(districts: Iterable[District] = tuple(District)) -> list[str]:
    """Every help queue: one per district team, and the contact centre's."""
    return [*(team_queue(d.value) for d in districts), CONTACT_CENTRE_QUEUE]


def help_requested_event(
    help_request_id: UUID | str,
    kiosk_id: str,
    entry_id: str,
    session_id: UUID | str,
    channel: HelpChannel,
    requested_at: dt.datetime,
    source: str,
) -> CloudEvent:
    """The event of a new help request."""
    payload = HelpRequested(
        help_request_id=str(help_request_id),
        kiosk_id=kiosk_id,
        entry_id=entry_id,
        session_id=str(session_id),
        channel=channel,
        requested_at=requested_at,
    )
    return new_event(EventType.KVIK_HELP_REQUESTED, payload, source=source, time=requested_at)


def help_answered_event(
    requested: HelpRequested, answered_at: dt.datetime, source: str
) -> CloudEvent:
    """The event of a help request taken by staff; its wait is ``answered_at - requested_at``."""
    payload = HelpAnswered(**requested.model_dump(), answered_at=answered_at)
    return new_event(EventType.KVIK_HELP_ANSWERED, payload, source=source, time=answered_at)
