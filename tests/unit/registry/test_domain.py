"""The registry's rules: validation of opening hours (evaluating them is the contract's:
tests/unit/contracts/test_opening_hours.py)."""

from __future__ import annotations

from services.contracts.payloads.registry import WeeklyOpening
from services.registry import domain


def test_overlapping_intervals_on_one_weekday_name_the_later_interval() -> None:
    weekly = (
        WeeklyOpening(weekday=0, opens="08:00", closes="17:00"),
        WeeklyOpening(weekday=1, opens="09:00", closes="10:00"),
        WeeklyOpening(weekday=0, opens="12:00", closes="13:00"),
    )
    problems = domain.opening_hour_problems(weekly, "body.opening_hours")
    assert [p.field for p in problems] == ["body.opening_hours.weekly[2]"]


def test_back_to_back_intervals_do_not_overlap() -> None:
    weekly = (
        WeeklyOpening(weekday=0, opens="08:00", closes="12:00"),
        WeeklyOpening(weekday=0, opens="12:00", closes="16:00"),
    )
    assert domain.opening_hour_problems(weekly, "x") == []
