"""How a date range is read from the fewest rollups (months, ISO weeks, days)."""

from __future__ import annotations

import datetime as dt

from services.metrics.domain import Period, period_name
from services.metrics.store import _largest_period_from


def _cover(first: dt.date, last: dt.date) -> list[str]:
    names, day = [], first
    while day <= last:
        period, span = _largest_period_from(day, last)
        names.append(f"{period.value}:{period_name(period, day)}")
        day += span
    return names


def test_a_year_is_twelve_months() -> None:
    names = _cover(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert names == [f"month:2024-{m:02d}" for m in range(1, 13)]


def test_an_iso_week_is_one_week_rollup() -> None:
    assert _cover(dt.date(2024, 1, 15), dt.date(2024, 1, 21)) == ["week:2024-W03"]


def test_a_ragged_range_uses_days_then_weeks_then_days() -> None:
    names = _cover(dt.date(2024, 1, 13), dt.date(2024, 1, 23))
    assert names == [
        "day:2024-01-13",
        "day:2024-01-14",
        "week:2024-W03",
        "day:2024-01-22",
        "day:2024-01-23",
    ]


def test_iso_week_names_use_the_iso_year() -> None:
    assert period_name(Period.WEEK, dt.date(2024, 12, 30)) == "2025-W01"
