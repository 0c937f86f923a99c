"""The contract's opening-hours rule (services/contracts/opening_hours.py): Copenhagen
wall-clock time across daylight saving, dated exceptions, Danish public holidays, and the hours
open in a period."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.contracts.geography import COPENHAGEN
from services.contracts.opening_hours import is_open_at, open_hours, public_holiday
from services.contracts.payloads.registry import (
    OpeningException,
    OpeningHours,
    WeeklyOpening,
)

UTC = dt.UTC
# Monday to Friday 09:00-10:00 local time.
MORNINGS = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=d, opens="09:00", closes="10:00") for d in range(5))
)
EVERY_DAY = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=d, opens="09:00", closes="10:00") for d in range(7))
)
WEEKDAYS_10_TO_19 = OpeningHours.model_validate(
    {"weekly": [{"weekday": d, "opens": "10:00", "closes": "19:00"} for d in range(5)]}
)
WEEKDAYS_10_TO_17 = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=day, opens="10:00", closes="17:00") for day in range(5))
)
MONDAY = dt.date(2024, 1, 15)


def _hours(
    first: dt.date, last: dt.date, hours: OpeningHours = WEEKDAYS_10_TO_17, **kw: Any
) -> float:
    return open_hours(hours, first, last, closes_on_holidays=kw.pop("staffed", True), **kw)


# -- open at an instant ------------------------------------------------------------------------


def test_the_same_utc_instant_is_open_after_the_spring_dst_change_and_closed_before() -> None:
    # 07:30 UTC is 08:30 CET on Saturday 28 March 2026 and 09:30 CEST on Sunday 29 March.
    assert not is_open_at(EVERY_DAY, dt.datetime(2026, 3, 28, 7, 30, tzinfo=UTC))
    assert is_open_at(EVERY_DAY, dt.datetime(2026, 3, 29, 7, 30, tzinfo=UTC))


def test_the_autumn_dst_change_moves_opening_one_utc_hour_later() -> None:
    # Sunday 25 October 2026: CEST ends at 01:00 UTC; 09:00 local is then 08:00 UTC.
    assert is_open_at(EVERY_DAY, dt.datetime(2026, 10, 24, 7, 30, tzinfo=UTC))
    assert not is_open_at(EVERY_DAY, dt.datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert is_open_at(EVERY_DAY, dt.datetime(2026, 10, 25, 8, 30, tzinfo=UTC))


def test_a_danish_public_holiday_is_closed_on_a_weekday() -> None:
    # Monday 6 April 2026 is Easter Monday (2. påskedag); Tuesday 7 April is an ordinary day.
    assert public_holiday(dt.date(2026, 4, 6)) is not None
    assert not is_open_at(MORNINGS, dt.datetime(2026, 4, 6, 9, 30, tzinfo=COPENHAGEN))
    assert is_open_at(MORNINGS, dt.datetime(2026, 4, 7, 9, 30, tzinfo=COPENHAGEN))


def test_an_exception_with_hours_opens_a_holiday() -> None:
    hours = MORNINGS.model_copy(
        update={
            "exceptions": (
                OpeningException(
                    date=dt.date(2026, 4, 6), closed=False, opens="12:00", closes="13:00"
                ),
            )
        }
    )
    assert is_open_at(hours, dt.datetime(2026, 4, 6, 12, 15, tzinfo=COPENHAGEN))
    assert not is_open_at(hours, dt.datetime(2026, 4, 6, 9, 30, tzinfo=COPENHAGEN))


def test_a_closed_exception_closes_an_ordinary_day() -> None:
    hours = MORNINGS.model_copy(
        update={"exceptions": (OpeningException(date=dt.date(2026, 4, 7), closed=True),)}
    )
    assert not is_open_at(hours, dt.datetime(2026, 4, 7, 9, 30, tzinfo=COPENHAGEN))


def test_closing_time_is_exclusive() -> None:
    at_ten = dt.datetime(2026, 4, 7, 10, 0, tzinfo=COPENHAGEN)
    assert not is_open_at(MORNINGS, at_ten)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open_at(MORNINGS, dt.datetime(2026, 4, 7, 9, 30))


def test_a_self_service_channel_can_stay_open_on_a_holiday() -> None:
    easter_monday = dt.datetime(2026, 4, 6, 9, 30, tzinfo=COPENHAGEN)
    assert is_open_at(MORNINGS, easter_monday, closes_on_holidays=False)


def test_opening_hours_are_copenhagen_wall_clock_time() -> None:
    # 09:30 UTC is 10:30 in Copenhagen in winter: open.
    assert is_open_at(WEEKDAYS_10_TO_19, dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC))
    assert not is_open_at(WEEKDAYS_10_TO_19, dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC))


def test_a_public_holiday_is_closed_unless_an_exception_opens_it() -> None:
    christmas = dt.datetime(2026, 12, 25, 11, 0, tzinfo=dt.UTC)  # a Friday
    assert not is_open_at(WEEKDAYS_10_TO_19, christmas)
    hours = OpeningHours.model_validate(
        {
            **WEEKDAYS_10_TO_19.model_dump(),
            "exceptions": [
                {"date": "2026-12-25", "closed": False, "opens": "10:00", "closes": "14:00"}
            ],
        }
    )
    assert is_open_at(hours, christmas)


# -- hours open in a period -------------------------------------------------------------------


def test_an_iso_week_of_weekday_hours_is_five_times_seven_hours() -> None:
    assert _hours(MONDAY, MONDAY + dt.timedelta(days=6)) == 35.0


def test_several_intervals_on_one_day_add_up() -> None:
    lunch_break = OpeningHours(
        weekly=(
            WeeklyOpening(weekday=0, opens="09:00", closes="12:00"),
            WeeklyOpening(weekday=0, opens="13:00", closes="15:30"),
        )
    )
    assert _hours(MONDAY, MONDAY, lunch_break) == 5.5


def test_a_dated_exception_replaces_the_weekly_hours_of_its_day() -> None:
    hours = WEEKDAYS_10_TO_17.model_copy(
        update={
            "exceptions": (
                OpeningException(date=MONDAY, closed=True),
                OpeningException(
                    date=MONDAY + dt.timedelta(days=5), closed=False, opens="10:00", closes="12:00"
                ),
            )
        }
    )
    # Monday closed (-7 h), Saturday open 2 h although the week has no Saturday hours.
    assert _hours(MONDAY, MONDAY + dt.timedelta(days=6), hours) == 35 - 7 + 2


def test_a_public_holiday_closes_a_staffed_entry_but_not_a_self_service_one() -> None:
    easter_monday = dt.date(2024, 4, 1)
    assert public_holiday(easter_monday)
    assert _hours(easter_monday, easter_monday, staffed=True) == 0.0
    assert _hours(easter_monday, easter_monday, staffed=False) == 7.0


def test_an_exception_on_a_holiday_opens_the_entry_anyway() -> None:
    easter_monday = dt.date(2024, 4, 1)
    hours = WEEKDAYS_10_TO_17.model_copy(
        update={
            "exceptions": (
                OpeningException(date=easter_monday, closed=False, opens="11:00", closes="13:00"),
            )
        }
    )
    assert _hours(easter_monday, easter_monday, hours, staffed=True) == 2.0


def test_the_night_the_clocks_go_forward_has_one_hour_less() -> None:
    around_the_clock = OpeningHours(
        weekly=(WeeklyOpening(weekday=6, opens="00:00", closes="23:59"),)
    )
    summer_time_starts = dt.date(2024, 3, 31)  # a Sunday, and Easter Sunday: self-service
    hours = _hours(summer_time_starts, summer_time_starts, around_the_clock, staffed=False)
    assert hours == pytest.approx(24 - 1 / 60 - 1)  # 23 h 59 min on the clock


def test_hours_after_until_are_not_counted() -> None:
    until = dt.datetime.combine(MONDAY + dt.timedelta(days=2), dt.time(12, 30), COPENHAGEN)
    # Monday and Tuesday whole (14 h), Wednesday 10:00-12:30.
    assert _hours(MONDAY, MONDAY + dt.timedelta(days=6), until=until) == 16.5
