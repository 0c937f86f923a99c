"""Opening hours, evaluated: whether an entry is open at an instant, and how many hours it was
open in a period. The registry publishes the hours (:class:`OpeningHours` in its payloads);
every service that reads them judges them by this one rule:

- weekly intervals in Copenhagen wall-clock time (the same UTC instant is 09:30 in summer and
  08:30 in winter);
- a dated exception replaces that day's weekly hours (closed all day, or other hours);
- without one, a Danish public holiday (the ``holidays`` package's list for Denmark) is closed
  for a staffed entry, while a self-service channel that needs no staff (``closes_on_holidays``
  false) keeps its weekly hours.

Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from services.contracts.geography import COPENHAGEN
from services.contracts.payloads.registry import OpeningHours


@lru_cache(maxsize=64)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def public_holiday(day: dt.date) -> str | None:
    """The name of the Danish public holiday on ``day``, or None."""
    name = _danish_holidays(day.year).get(day)
    return str(name) if name is not None else None


def minute_of_day(clock: str) -> int:
    """``"09:30"`` -> 570: a wall-clock time of the contract as minutes after midnight."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def is_open_at(hours: OpeningHours, when: dt.datetime, *, closes_on_holidays: bool = True) -> bool:
    """Whether ``hours`` are open at the instant ``when`` (timezone-aware)."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    local = when.astimezone(COPENHAGEN)
    day = local.date()
    now = local.hour * 60 + local.minute
    for exception in hours.exceptions:
        if exception.date == day:
            if exception.closed or exception.opens is None or exception.closes is None:
                return False
            return minute_of_day(exception.opens) <= now < minute_of_day(exception.closes)
    if closes_on_holidays and public_holiday(day) is not None:
        return False
    return any(
        minute_of_day(interval.opens) <= now < minute_of_day(interval.closes)
        for interval in hours.weekly
        if interval.weekday == day.weekday()
    )


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
    if closes_on_holidays and public_holiday(day) is not None:
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

    Hours are real elapsed hours: an interval across a daylight-saving change counts what the
    clock did.
    """
    seconds = 0.0
    limit = until.astimezone(dt.UTC) if until is not None else None
    day = first
    while day <= last:
        for opens, closes in intervals_on(hours, day, closes_on_holidays=closes_on_holidays):
            start, end = opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)
            if limit is not None:
                end = min(end, limit)
            if end > start:
                seconds += (end - start).total_seconds()
        day += dt.timedelta(days=1)
    return seconds / 3600
