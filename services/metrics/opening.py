"""How many hours an entry point was open in a period, from the registry's opening hours.

The registry's rule (``services/registry/domain.py`` ``is_open_at``), counted rather than asked
at one instant, and implemented here because services do not import each other: weekly
intervals in Copenhagen wall-clock time; a dated exception replaces that day's intervals
(closed all day, or other hours); without one, a Danish public holiday (the ``holidays``
package's list for Denmark) closes a staffed entry, while a self-service one stays open. Hours
are real elapsed hours: an interval across a daylight-saving change counts what the clock did.

Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from services.contracts import OpeningHours
from services.metrics.domain import COPENHAGEN, days_between


@lru_cache(maxsize=64)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def public_holiday(day: dt.date) -> bool:
    """Whether ``day`` is a Danish public holiday."""
    return day in _danish_holidays(day.year)


def _clock(day: dt.date, clock: str) -> dt.datetime:
    hours, minutes = clock.split(":")
    return dt.datetime.combine(day, dt.time(int(hours), int(minutes)), COPENHAGEN)


def intervals_on(
    hours: OpeningHours, day: dt.date, *, closes_on_holidays: bool
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The opening intervals of ``day`` as aware Copenhagen datetimes (empty: closed)."""
    for exception in hours.exceptions:
        if exception.date == day:
            if exception.closed or exception.opens is None or exception.closes is None:
                return []
            return [(_clock(day, exception.opens), _clock(day, exception.closes))]
    if closes_on_holidays and public_holiday(day):
        return []
    weekday = day.weekday()
    return [
        (_clock(day, interval.opens), _clock(day, interval.closes))
        for interval in hours.weekly
        if interval.weekday == weekday
    ]


def open_hours(
    hours: OpeningHours,
    first: dt.date,
    last: dt.date,
    *,
    closes_on_holidays: bool,
    until: dt.datetime | None = None,
) -> float:
    """Hours open from ``first`` to ``last`` (inclusive), cut off at ``until`` when given (so
    the current week counts only the hours that have passed).

    ``closes_on_holidays`` is true for a staffed entry (the registry's rule).
    """
    seconds = 0.0
    limit = until.astimezone(dt.UTC) if until is not None else None
    for day in days_between(first, last):
        for opens, closes in intervals_on(hours, day, closes_on_holidays=closes_on_holidays):
            start, end = opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)
            if limit is not None:
                end = min(end, limit)
            if end > start:
                seconds += (end - start).total_seconds()
    return seconds / 3600
