"""The traffic model of ``kanalhub simulate``."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contracts import District, HelpChannel, SessionOutcome
from services.hub.simulation import (
    GENERAL_NEEDS,
    SERVICE_MIX,
    DayPlan,
    contacts_on,
    plan_day,
    target_share,
)

START = dt.date(2026, 1, 5)
KIOSKS = {District.VALBY: ["kvik-valby"], District.NORREBRO: ["kvik-a", "kvik-b"]}


def _self_service_share(plan: DayPlan) -> float:
    kiosk_self = sum(
        1
        for sessions in plan.sessions.values()
        for s in sessions
        if s.outcome is SessionOutcome.COMPLETED and s.help is HelpChannel.NONE
    )
    platform = sum(line.self_service for line in plan.digital)
    return (kiosk_self + platform) / plan.contacts


def test_the_same_day_and_seed_give_the_same_traffic() -> None:
    assert plan_day(dt.date(2026, 3, 2), START, KIOSKS) == plan_day(
        dt.date(2026, 3, 2), START, KIOSKS
    )


def test_general_needs_take_80_percent_of_the_service_mix() -> None:
    assert sum(SERVICE_MIX[code] for code in GENERAL_NEEDS) == pytest.approx(0.80)
    assert sum(SERVICE_MIX.values()) == pytest.approx(1.0)


def test_the_day_comes_close_to_the_models_share_for_all_districts() -> None:
    day = dt.date(2026, 3, 2)
    expected = sum(target_share(d, day, START) * contacts_on(d, day) for d in District) / sum(
        contacts_on(d, day) for d in District
    )
    assert _self_service_share(plan_day(day, START, KIOSKS)) == pytest.approx(expected, abs=0.03)


def test_the_share_rises_over_the_weeks() -> None:
    assert target_share(District.VALBY, START + dt.timedelta(weeks=30), START) > target_share(
        District.VALBY, START, START
    )


def test_a_monday_is_busier_than_a_sunday() -> None:
    monday, sunday = dt.date(2026, 3, 2), dt.date(2026, 3, 8)
    assert contacts_on(District.VALBY, monday) > 5 * contacts_on(District.VALBY, sunday)


def test_kiosk_sessions_happen_only_at_kiosk_entries_within_opening_hours() -> None:
    plan = plan_day(dt.date(2026, 3, 3), START, KIOSKS)
    assert set(plan.sessions) == {"kvik-valby", "kvik-a", "kvik-b"}
    for sessions in plan.sessions.values():
        for session in sessions:
            local = session.started_at.astimezone(dt.timezone(dt.timedelta(hours=1)))
            assert 10 <= local.hour < 17
            assert session.ended_at > session.started_at
