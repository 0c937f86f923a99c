"""The registry's rules: opening hours across DST and holidays, validation, distances, reports."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contracts.payloads.registry import (
    OpeningException,
    OpeningHours,
    WeeklyOpening,
)
from services.registry import domain

UTC = dt.UTC
# Monday to Friday 09:00-10:00 local time.
MORNINGS = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=d, opens="09:00", closes="10:00") for d in range(5))
)
EVERY_DAY = OpeningHours(
    weekly=tuple(WeeklyOpening(weekday=d, opens="09:00", closes="10:00") for d in range(7))
)


def test_the_same_utc_instant_is_open_after_the_spring_dst_change_and_closed_before() -> None:
    # 07:30 UTC is 08:30 CET on Saturday 28 March 2026 and 09:30 CEST on Sunday 29 March.
    assert not domain.is_open_at(EVERY_DAY, dt.datetime(2026, 3, 28, 7, 30, tzinfo=UTC))
    assert domain.is_open_at(EVERY_DAY, dt.datetime(2026, 3, 29, 7, 30, tzinfo=UTC))


def test_the_autumn_dst_change_moves_opening_one_utc_hour_later() -> None:
    # Sunday 25 October 2026: CEST ends at 01:00 UTC; 09:00 local is then 08:00 UTC.
    assert domain.is_open_at(EVERY_DAY, dt.datetime(2026, 10, 24, 7, 30, tzinfo=UTC))
    assert not domain.is_open_at(EVERY_DAY, dt.datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert domain.is_open_at(EVERY_DAY, dt.datetime(2026, 10, 25, 8, 30, tzinfo=UTC))


def test_a_danish_public_holiday_is_closed_on_a_weekday() -> None:
    # Monday 6 April 2026 is Easter Monday (2. påskedag); Tuesday 7 April is an ordinary day.
    assert domain.public_holiday(dt.date(2026, 4, 6)) is not None
    assert not domain.is_open_at(MORNINGS, dt.datetime(2026, 4, 6, 9, 30, tzinfo=domain.COPENHAGEN))
    assert domain.is_open_at(MORNINGS, dt.datetime(2026, 4, 7, 9, 30, tzinfo=domain.COPENHAGEN))


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
    assert domain.is_open_at(hours, dt.datetime(2026, 4, 6, 12, 15, tzinfo=domain.COPENHAGEN))
    assert not domain.is_open_at(hours, dt.datetime(2026, 4, 6, 9, 30, tzinfo=domain.COPENHAGEN))


def test_a_closed_exception_closes_an_ordinary_day() -> None:
    hours = MORNINGS.model_copy(
        update={"exceptions": (OpeningException(date=dt.date(2026, 4, 7), closed=True),)}
    )
    assert not domain.is_open_at(hours, dt.datetime(2026, 4, 7, 9, 30, tzinfo=domain.COPENHAGEN))


def test_closing_time_is_exclusive() -> None:
    at_ten = dt.datetime(2026, 4, 7, 10, 0, tzinfo=domain.COPENHAGEN)
    assert not domain.is_open_at(MORNINGS, at_ten)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        domain.is_open_at(MORNINGS, dt.datetime(2026, 4, 7, 9, 30))


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


def test_coordinates_outside_copenhagen_name_the_field() -> None:
    # Aarhus: right country, wrong city.
    problems = domain.coordinate_problems(56.1567, 10.2108)
    assert {p.field for p in problems} == {"body.latitude", "body.longitude"}
    assert domain.coordinate_problems(55.6759, 12.5700) == []


def test_haversine_gives_the_city_hall_to_islands_brygge_distance() -> None:
    # About 1.2 km as the crow flies.
    distance = domain.haversine_km(55.6759, 12.5700, 55.6655, 12.5780)
    assert 1.1 < distance < 1.4


def test_a_self_service_channel_can_stay_open_on_a_holiday() -> None:
    easter_monday = dt.datetime(2026, 4, 6, 9, 30, tzinfo=domain.COPENHAGEN)
    assert domain.is_open_at(MORNINGS, easter_monday, closes_on_holidays=False)
