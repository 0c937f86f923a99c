"""The desk figures the API (``GET /desk/times``) and the page have in common: per
citizen-service centre and service, tickets served, no-shows and the waiting and service time
histograms, read from the store and summed with ``tickets``. One place, so the two never
disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis.asyncio import Redis

from services.contracts import District
from services.metrics import domain, tickets
from services.metrics.store import MetricsStore


@dataclass(frozen=True)
class CentreFigures:
    """One centre's (registry entry's) tickets in a period: a total and one per service."""

    entry_id: str
    name: str
    """The entry's name in the registry copy; its id when the registry has not told of it."""
    district: District | None
    """None when the registry has not told of the entry."""
    total: tickets.DeskFigures
    services: tuple[tuple[str, tickets.DeskFigures], ...]
    """Per service code, sorted by code."""


async def centres(
    store: MetricsStore,
    redis: Redis,
    first: dt.date,
    last: dt.date,
    entry_id: str | None = None,
    service: str | None = None,
) -> list[CentreFigures]:
    """Every centre with tickets from ``first`` to ``last`` (inclusive), sorted by entry id,
    for one centre and/or service or all; centres without tickets are left out."""
    days = await store.desk_days(redis, domain.days_between(first, last))
    by_entry = tickets.figures_by_entry_and_service(days, entry_id, service)
    entries = await store.entries(redis)
    result = []
    for centre_id in sorted(by_entry):
        services = by_entry[centre_id]
        entry = entries.get(centre_id)
        result.append(
            CentreFigures(
                entry_id=centre_id,
                name=entry.name if entry is not None else centre_id,
                district=entry.district if entry is not None else None,
                total=tickets.total_of(services.values()),
                services=tuple((code, services[code]) for code in sorted(services)),
            )
        )
    return result
