"""The kvik service's rules (services/kvik/domain.py), without I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contracts import EventType, SessionOutcome
from services.contracts.payloads.registry import OpeningHours
from services.contracts.reference import Channel, HelpChannel
from services.kvik import domain

NOW = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)  # a Monday, 12:00 in Copenhagen
LIMITS = domain.Limits(clock_skew=dt.timedelta(minutes=5), max_duration=dt.timedelta(hours=4))
WEEKDAYS_10_TO_19 = OpeningHours.model_validate(
    {"weekly": [{"weekday": d, "opens": "10:00", "closes": "19:00"} for d in range(5)]}
)


def _session(**changes: object) -> domain.Session:
    values: dict[str, object] = {
        "session_id": "2f1c7c52-8f0e-4d57-9a43-3f6f0b7d5e11",
        "kiosk_id": "kiosk-1",
        "service": "passport",
        "started_at": NOW - dt.timedelta(minutes=10),
        "ended_at": NOW - dt.timedelta(minutes=2),
        "steps": ("identify", "form"),
        "outcome": SessionOutcome.COMPLETED,
        "help": HelpChannel.NONE,
    }
    values.update(changes)
    return domain.Session(**values)  # type: ignore[arg-type]


def test_a_valid_session_has_no_problems() -> None:
    assert domain.session_problems(_session(), NOW, LIMITS) == []


def test_an_end_within_the_clock_skew_is_accepted() -> None:
    session = _session(ended_at=NOW + dt.timedelta(minutes=4))
    assert domain.session_problems(session, NOW, LIMITS) == []


def test_an_end_beyond_the_clock_skew_is_a_problem() -> None:
    session = _session(ended_at=NOW + dt.timedelta(minutes=6))
    assert [p.field for p in domain.session_problems(session, NOW, LIMITS)] == ["body.ended_at"]


def test_an_end_before_the_start_is_a_problem() -> None:
    session = _session(ended_at=NOW - dt.timedelta(minutes=20))
    problems = domain.session_problems(session, NOW, LIMITS)
    assert [p.message for p in problems] == ["is before started_at"]


def test_a_session_of_exactly_four_hours_is_accepted_and_longer_is_not() -> None:
    four = _session(started_at=NOW - dt.timedelta(hours=4), ended_at=NOW)
    longer = _session(started_at=NOW - dt.timedelta(hours=4, seconds=1), ended_at=NOW)
    assert domain.session_problems(four, NOW, LIMITS) == []
    assert len(domain.session_problems(longer, NOW, LIMITS)) == 1


@pytest.mark.parametrize(
    ("outcome", "referred_to", "ok"),
    [
        (SessionOutcome.REFERRED, Channel.COUNTER, True),
        (SessionOutcome.REFERRED, None, False),
        (SessionOutcome.REFERRED, Channel.KVIK, False),
        (SessionOutcome.COMPLETED, Channel.PHONE, False),
    ],
)
def test_only_a_referral_names_another_channel(
    outcome: SessionOutcome, referred_to: Channel | None, ok: bool
) -> None:
    assert (domain.outcome_problems(outcome, referred_to) == []) is ok


def test_the_fingerprint_ignores_the_time_zone_a_time_is_written_in() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    moved = _session(started_at=(NOW - dt.timedelta(minutes=10)).astimezone(plus_one))
    assert moved.fingerprint() == _session().fingerprint()
    assert _session(help=HelpChannel.VIDEO).fingerprint() != _session().fingerprint()


@pytest.mark.parametrize(
    ("outcome", "event_type"),
    [
        (SessionOutcome.COMPLETED, EventType.KVIK_SESSION_COMPLETED),
        (SessionOutcome.ABANDONED, EventType.KVIK_SESSION_ABANDONED),
    ],
)
def test_a_session_becomes_the_event_of_its_outcome_timed_at_its_end(
    outcome: SessionOutcome, event_type: EventType
) -> None:
    event = domain.session_event(_session(outcome=outcome), "kvik-1", "valby", "/kanalhub/kvik")
    assert event.type is event_type
    assert event.time == NOW - dt.timedelta(minutes=2)
    assert event.subject == "2f1c7c52-8f0e-4d57-9a43-3f6f0b7d5e11"


def test_streamed_steps_are_ordered_by_seq_unless_the_end_sends_the_full_list() -> None:
    assert domain.merge_steps({2: "c", 0: "a", 1: "b"}, None) == ("a", "b", "c")
    assert domain.merge_steps({0: "a"}, ["x", "y"]) == ("x", "y")


def test_a_kiosk_is_offline_only_after_the_silence_while_open() -> None:
    silence = dt.timedelta(minutes=3)
    last_seen = NOW - dt.timedelta(minutes=4)
    assert domain.offline_due(last_seen, NOW, silence, WEEKDAYS_10_TO_19)
    assert not domain.offline_due(NOW - dt.timedelta(minutes=2), NOW, silence, WEEKDAYS_10_TO_19)


def test_a_kiosk_is_not_offline_just_after_opening_time() -> None:
    # 10:01 in Copenhagen: the silence began before opening, the kiosk may still be booting.
    just_opened = dt.datetime(2026, 11, 23, 9, 1, tzinfo=dt.UTC)
    last_seen = just_opened - dt.timedelta(hours=15)
    assert not domain.offline_due(
        last_seen, just_opened, dt.timedelta(minutes=3), WEEKDAYS_10_TO_19
    )


def test_help_waits_in_the_district_team_queue() -> None:
    assert domain.team_queue("valby") == "team-valby"
    assert domain.CONTACT_CENTRE_QUEUE in domain.queue_names()
    assert len(domain.queue_names()) == 11


def test_the_answered_event_carries_the_request_and_the_answer_time() -> None:
    requested = domain.help_requested_event(
        "h-1", "kiosk-1", "kvik-1", "s-1", HelpChannel.VIDEO, NOW, "/kanalhub/kvik"
    )
    answered = domain.help_answered_event(
        requested.data,  # type: ignore[arg-type]
        NOW + dt.timedelta(seconds=42),
        "/kanalhub/kvik",
    )
    data = answered.data
    assert (data.answered_at - data.requested_at).total_seconds() == 42  # type: ignore[attr-defined]
