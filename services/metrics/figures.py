"""The figures the API, the Prometheus exposition and the district-share events have in common:
read from the store, computed with ``domain`` and ``forecast``. One place, so that the page,
the API and Grafana never disagree."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from services.contracts import CITIZEN_SERVICE_KINDS, ContactMode, District, EntryStatus
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


async def kvik_funnel(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    district: District | None = None,
    service: str | None = None,
) -> domain.KvikFunnel:
    """KVIK sessions completed (self-service or helped) and abandoned from ``first`` to
    ``last`` (inclusive), for a district and/or service or all; referred sessions are not in
    it."""
    cells = await store.range_cells(redis, first, last, by_service=service is not None)
    abandoned = await store.abandoned(redis, domain.days_between(first, last))
    return domain.kvik_funnel(cells, abandoned, district, service)


@dataclass(frozen=True)
class HelpFigures:
    """Requests for staff help from KVIK kiosks and how long citizens waited for an answer."""

    requested: int
    answered: int
    wait_ms: int

    @property
    def mean_wait_seconds(self) -> float | None:
        """Mean time from a help request to staff answering it; None when none was answered."""
        return self.wait_ms / 1000 / self.answered if self.answered else None


async def kvik_help(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    district: District | None = None,
) -> HelpFigures:
    """The help figures from ``first`` to ``last`` (inclusive), over all services and help
    channels, for a district or all."""
    days = domain.days_between(first, last)
    counts = by_last_part(await store.day_hashes(redis, ("kvik", "help"), days), district)
    return HelpFigures(
        requested=counts.get("requested", 0),
        answered=counts.get("answered", 0),
        wait_ms=counts.get("wait_ms", 0),
    )


@dataclass(frozen=True)
class MobileFigures:
    """Mobile citizen service from the completed visits of a period."""

    visits_completed: int
    contacts: int
    onboarded: int
    staffed_seconds: int

    @property
    def staffed_hours(self) -> float:
        """The staff hours of the completed visits."""
        return self.staffed_seconds / 3600

    @property
    def contacts_per_staffed_hour(self) -> float | None:
        """Contacts per staff hour; None without staff hours."""
        hours = self.staffed_hours
        return self.contacts / hours if hours else None

    @property
    def onboarding_rate(self) -> float | None:
        """Citizens onboarded to digital self-service / contacts; None without contacts."""
        return self.onboarded / self.contacts if self.contacts else None


async def mobile(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    district: District | None = None,
) -> MobileFigures:
    """The mobile figures from ``first`` to ``last`` (inclusive), for a district or all."""
    days = domain.days_between(first, last)
    counts = by_last_part(await store.day_hashes(redis, ("mobile", "day"), days), district)
    return MobileFigures(
        visits_completed=counts.get("completed", 0),
        contacts=counts.get("contacts", 0),
        onboarded=counts.get("onboarded", 0),
        staffed_seconds=counts.get("staffed_seconds", 0),
    )


@dataclass(frozen=True)
class CountingWeekLine:
    """One service's contacts on one channel in a counting week."""

    channel: str
    service: str
    self_service: int
    assisted: int

    @property
    def contacts(self) -> int:
        """All the line's contacts."""
        return self.self_service + self.assisted


async def counting_weeks(
    store: MetricsStore,
    redis: Redis,
    days: Iterable[dt.date],
    district: District | None = None,
) -> list[tuple[dt.date, list[CountingWeekLine]]]:
    """Per ISO week containing one of ``days`` (Monday, oldest first, each week once): the
    contacts per channel and service, sorted, for a district or all ("tælleuger")."""
    mondays = sorted({day - dt.timedelta(days=day.weekday()) for day in days})
    cells = await store.period_cells(redis, domain.Period.WEEK, mondays, by_service=True)
    result: list[tuple[dt.date, list[CountingWeekLine]]] = []
    for monday, week_cells in zip(mondays, cells, strict=True):
        lines: dict[tuple[str, str], list[int]] = {}
        for cell, count in week_cells.items():
            if district is not None and cell.district is not district:
                continue
            line = lines.setdefault((cell.channel, cell.service), [0, 0])
            line[0 if cell.mode is ContactMode.SELF_SERVICE else 1] += count
        result.append(
            (
                monday,
                [
                    CountingWeekLine(channel, service, self_service, assisted)
                    for (channel, service), (self_service, assisted) in sorted(lines.items())
                ],
            )
        )
    return result


@dataclass(frozen=True)
class KioskCounts:
    """The KVIK kiosks the service has heard of, and how many last reported online."""

    online: int
    known: int


async def kiosks(store: MetricsStore, redis: Redis) -> KioskCounts:
    """How many kiosks are known and how many of them are online now (their last report)."""
    states = await store.kiosks(redis)
    return KioskCounts(online=sum(k.state == "online" for k in states), known=len(states))
