"""The usage figures per entry point and site that the API (``/usage/...``) and the built-in
page have in common: the usage rollups and the registry copy read from the store, summed and
shared out with ``place_usage``. One place, so the page and the API never disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis.asyncio import Redis

from services.metrics.place_usage import (
    EntryUsage,
    SiteUsage,
    Tally,
    UsageFilter,
    count_open_hours,
    entry_usage,
    site_usage,
)
from services.metrics.store import MetricsStore, RegistryEntry


async def entries_between(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    selection: UsageFilter,
    by_service: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, EntryUsage]:
    """Every entry's usage from ``first`` to ``last`` (see ``place_usage.entry_usage``), open
    hours counted up to ``now``."""
    cells = await store.usage_cells(
        redis, first, last, by_service=by_service or selection.service is not None
    )
    entries = await store.entries(redis)
    return entry_usage(cells, entries, selection, first, last, until=now or dt.datetime.now(dt.UTC))


async def entry_between(
    store: MetricsStore, redis: Redis, entry_id: str, first: dt.date, last: dt.date
) -> EntryUsage | None:
    """One entry's usage from ``first`` to ``last``, by service too; a known entry neither open
    nor used in the period has zeros and its hours; None when the registry has not told of it
    and it had no contacts."""
    usage = await entries_between(store, redis, first, last, UsageFilter(), by_service=True)
    place = usage.get(entry_id)
    if place is None:
        entry = await store.entry(redis, entry_id)
        if entry is None:
            return None
        place = EntryUsage(entry_id, entry, entry.site_id, entry.district)
        count_open_hours(place, first, last, until=dt.datetime.now(dt.UTC))
    return place


async def site_names(store: MetricsStore, redis: Redis) -> dict[str, str]:
    """Every registry site's name (retired ones too), by site id."""
    return {site_id: site.name for site_id, site in (await store.sites(redis)).items()}


@dataclass(frozen=True)
class SitesUsage:
    """The usage of every site in a period, and what the answer names next to it."""

    sites: dict[str, SiteUsage]
    unlocated: Tally
    """Contacts at no known site (an entry the registry has not told of, or without one)."""
    per_entry: dict[str, EntryUsage]
    """Each entry's usage (no open hours), for the lines of a site's entries."""
    entries: dict[str, RegistryEntry]
    """The registry copy's entries."""


async def sites_between(
    store: MetricsStore, redis: Redis, first: dt.date, last: dt.date, selection: UsageFilter
) -> SitesUsage:
    """Every site's usage from ``first`` to ``last`` (see ``place_usage.site_usage``); a KVIK
    contact counts at its entry's site as the registry knows it now."""
    cells = await store.usage_cells(redis, first, last, by_service=selection.service is not None)
    entries = await store.entries(redis)
    sites, unlocated = site_usage(cells, entries, await store.sites(redis), selection)
    per_entry = entry_usage(cells, entries, selection, first, last, with_hours=False)
    return SitesUsage(sites, unlocated, per_entry, entries)
