"""The figures the API, the Prometheus exposition and the district-share events have in common:
read from the store, computed with ``domain`` and ``forecast``. One place, so that the page,
the API and Grafana never disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis.asyncio import Redis

from services.contracts import CITIZEN_SERVICE_KINDS, District, EntryStatus
from services.metrics import domain, needs
from services.metrics.forecast import Forecast, forecast
from services.metrics.settings import MetricsSettings
from services.metrics.store import SEP, MetricsStore, rollups_covering


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


async def special_needs(store: MetricsStore, redis: Redis) -> frozenset[str]:
    """The catalogue's special-needs services (one read of the catalogue copy)."""
    return needs.special_services(await store.general_needs(redis))


async def needs_shares_in(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    service: str | None = None,
    special: frozenset[str] | None = None,
) -> dict[District, needs.NeedsShares]:
    """Every district's share from ``first`` to ``last`` (inclusive), overall and split into
    general and special needs, for a service or all. ``special`` (the catalogue's special-needs
    services) is read when not given; pass it to read the catalogue once for many figures."""
    if special is None:
        special = await special_needs(store, redis)
    if service is not None:
        cells = await store.range_cells(redis, first, last, by_service=True)
        return needs.split_service_by_district(cells, service, special)
    read = await store.mix_with_services(redis, rollups_covering(first, last), special)
    return needs.split_by_district((mix for mix, _ in read), (cells for _, cells in read))


@dataclass(frozen=True)
class WeekShare:
    """One ISO week's contacts of a district, overall and by needs group."""

    monday: dt.date
    needs: needs.NeedsShares

    @property
    def share(self) -> domain.Share:
        """All the week's contacts (general and special needs)."""
        return self.needs.overall


async def weekly_shares(
    store: MetricsStore,
    redis: Redis,
    last_day: dt.date,
    weeks: int,
    special: frozenset[str] | None = None,
) -> dict[District, list[WeekShare]]:
    """The share of each of the ``weeks`` ISO weeks up to the one of ``last_day``, per district
    (all services), overall and by needs group, oldest first; one read for all the weeks."""
    if special is None:
        special = await special_needs(store, redis)
    last_monday = last_day - dt.timedelta(days=last_day.weekday())
    mondays = [last_monday - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    read = await store.mix_with_services(
        redis, [(domain.Period.WEEK, monday) for monday in mondays], special
    )
    result: dict[District, list[WeekShare]] = {district: [] for district in District}
    for monday, (mix, special_cells) in zip(mondays, read, strict=True):
        for district, split in needs.split_by_district([mix], [special_cells]).items():
            result[district].append(WeekShare(monday, split))
    return result


def forecast_of(weeks: list[WeekShare], settings: MetricsSettings) -> Forecast:
    """The forecast from a district's weekly **general-needs** shares against the configured
    target and deadline; weeks without general-needs contacts are left out, and so is the
    current (unfinished) week."""
    points = [
        (w.monday, share) for w in weeks[:-1] if (share := w.needs.headline.share) is not None
    ]
    return forecast(
        points,
        target=settings.target_share,
        deadline=settings.target_deadline,
        horizon_weeks=settings.forecast_horizon_weeks,
    )


async def forecasts(
    store: MetricsStore,
    redis: Redis,
    today: dt.date,
    settings: MetricsSettings,
    special: frozenset[str] | None = None,
) -> dict[District, Forecast]:
    """Every district's forecast from the ``forecast_weeks`` weeks before the current one."""
    weekly = await weekly_shares(store, redis, today, settings.forecast_weeks + 1, special)
    return {district: forecast_of(w, settings) for district, w in weekly.items()}


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
