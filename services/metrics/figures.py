"""The figures the API, the Prometheus exposition and the district-share events have in common:
read from the store, computed with ``domain`` and ``forecast``. One place, so that the page,
the API and Grafana never disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis.asyncio import Redis

from services.contracts import CITIZEN_SERVICE_KINDS, District, EntryStatus
from services.metrics import domain
from services.metrics.forecast import Forecast, forecast
from services.metrics.store import SEP, MetricsStore


async def shares_in(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    service: str | None = None,
) -> dict[District, domain.Share]:
    """Every district's share from ``first`` to ``last`` (inclusive), for a service or all."""
    cells = await store.range_cells(redis, first, last, by_service=service is not None)
    return domain.shares_by_district(cells, service)


def total_of(shares: dict[District, domain.Share]) -> domain.Share:
    """The share of all districts together."""
    total = domain.Share()
    for share in shares.values():
        total.merge(share)
    return total


@dataclass(frozen=True)
class WeekShare:
    """One ISO week's contacts of a district."""

    monday: dt.date
    share: domain.Share


async def weekly_shares(
    store: MetricsStore, redis: Redis, last_day: dt.date, weeks: int
) -> dict[District, list[WeekShare]]:
    """The share of each of the ``weeks`` ISO weeks up to the one of ``last_day``, per district
    (all services), oldest first."""
    last_monday = last_day - dt.timedelta(days=last_day.weekday())
    mondays = [last_monday - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    cells = await store.period_cells(redis, domain.Period.WEEK, mondays, by_service=False)
    result: dict[District, list[WeekShare]] = {district: [] for district in District}
    for monday, week_cells in zip(mondays, cells, strict=True):
        for district, share in domain.shares_by_district([week_cells]).items():
            result[district].append(WeekShare(monday, share))
    return result


def forecast_of(weeks: list[WeekShare], horizon_weeks: int) -> Forecast:
    """The forecast from a district's weekly shares; weeks without contacts are left out, and so
    is the current (unfinished) week."""
    points = [(w.monday, share) for w in weeks[:-1] if (share := w.share.share) is not None]
    return forecast(points, horizon_weeks=horizon_weeks)


async def forecasts(
    store: MetricsStore, redis: Redis, today: dt.date, weeks: int, horizon_weeks: int
) -> dict[District, Forecast]:
    """Every district's forecast from the ``weeks`` weeks before the current one."""
    weekly = await weekly_shares(store, redis, today, weeks + 1)
    return {district: forecast_of(w, horizon_weeks) for district, w in weekly.items()}


async def coverage(store: MetricsStore, redis: Redis) -> dict[District, list[str]]:
    """Per district, the open citizen-service entries (centre, KVIK point, mobile stop) known
    from the registry; an empty list means the district is not covered."""
    covered: dict[District, list[str]] = {district: [] for district in District}
    for entry_id, entry in sorted((await store.entries(redis)).items()):
        if (
            entry.district is not None
            and entry.status is EntryStatus.OPEN
            and entry.kind in CITIZEN_SERVICE_KINDS
        ):
            covered[entry.district].append(entry_id)
    return covered


def by_last_part(counts: dict[str, int], district: District | None = None) -> dict[str, int]:
    """Sum ``district|...|what`` fields (the KVIK help and mobile day hashes) by ``what``, for
    one district or all."""
    summed: dict[str, int] = {}
    for field, count in counts.items():
        parts = field.split(SEP)
        if district is None or parts[0] == district:
            summed[parts[-1]] = summed.get(parts[-1], 0) + count
    return summed
