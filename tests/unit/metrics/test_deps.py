"""The day every metrics read and intake takes: YYYY-MM-DD only, within the calendar's bounds."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError

from services.metrics.deps import FIRST_DAY, LAST_DAY, Day

DAY = TypeAdapter(Day)


def test_a_calendar_day_is_read() -> None:
    assert DAY.validate_python("2026-12-07") == dt.date(2026, 12, 7)


@pytest.mark.parametrize("value", ["0", 0, "1700000000", "07-12-2026", "2026-12-07T10:00", ""])
def test_a_number_or_another_format_is_not_a_day(value: object) -> None:
    with pytest.raises(ValidationError):
        DAY.validate_python(value)


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "1969-12-31", "3000-01-01"])
def test_a_day_at_the_ends_of_the_calendar_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=f"from {FIRST_DAY} to {LAST_DAY}"):
        DAY.validate_python(value)
