"""Usage per building and entry point (``metrics:read``): how many place-bound contacts (KVIK,
counter, mobile) each entry point and each site handled in a day, ISO week or month, by channel,
mode and service; contacts per open hour; the administrations sharing a site; the least and
most used entry points. Each route parses, reads its figures through ``usage_figures`` (the
usage rollups and the registry copy, summed with ``place_usage``; the built-in page reads the
same figures there), and answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.contracts import Administration, Channel, ContactMode, District, EntryKind
from services.contracts.payloads.base import Code
from services.metrics import domain, usage_figures
from services.metrics.deps import FIRST_DAY, LAST_DAY, Day, RuntimeDep, StoreDep
from services.metrics.place_usage import (
    AdministrationUsage,
    EntryUsage,
    Measure,
    Order,
    PlaceChannel,
    SiteUsage,
    Tally,
    UsageFilter,
    ranking,
)
from services.metrics.store import RegistryEntry
from services.plumbing.auth import MetricsReader
from services.plumbing.exact_values import QueryInt
from services.plumbing.problems import Problem, problem_responses

router = APIRouter(prefix="/usage", tags=["usage"])

READ_PROBLEMS = problem_responses(401, 403, 422)

PeriodQuery = Annotated[
    domain.Period, Query(description="The day, ISO week (Monday-Sunday) or month of `date`.")
]
DateQuery = Annotated[
    Day,
    Query(description=f"A day in the period, YYYY-MM-DD, from {FIRST_DAY} to {LAST_DAY}."),
]
DistrictQuery = Annotated[
    District | None,
    Query(description="Only places in this district (their contacts' district); all if left out."),
]
ChannelQuery = Annotated[
    PlaceChannel | None,
    Query(description="Only contacts on this place-bound channel; all three if left out."),
]
ServiceQuery = Annotated[
    Code | None, Query(description="Only contacts about this catalogue service; all if left out.")
]
EntryIdPath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="A registry entry id.",
    ),
]


# -- schemas -----------------------------------------------------------------------------------


class ModesOut(BaseModel):
    """Contacts of one channel by mode."""

    self_service: int
    assisted: int
    total: int


class TallyOut(BaseModel):
    """Place-bound contacts by channel and mode; ``contacts`` is the sum of the channels."""

    contacts: int
    self_service: int
    assisted: int
    channels: dict[PlaceChannel, ModesOut] = Field(
        description="kvik, counter and mobile, each by mode (zeros included)."
    )


class ServiceUsageOut(TallyOut):
    """One catalogue service's contacts at an entry."""

    service: str


class EntryUsageOut(TallyOut):
    """One entry point's contacts in the period, with what the registry says of it."""

    entry_id: str
    name: str | None = Field(description="null: the registry has not told of this entry.")
    kind: EntryKind | None
    site_id: str | None
    site_name: str | None
    administration: Administration | None
    district: District | None
    status: str | None = Field(description="The entry's status now (not in the period).")
    retired: bool
    open_hours: float | None = Field(
        description="Hours open in the period from the registry's opening hours (weekly "
        "intervals, dated exceptions; public holidays close staffed entries), up to now for a "
        "period that has not ended; null when the registry has not told of the entry."
    )
    contacts_per_open_hour: float | None = Field(
        description="contacts / open_hours; null when the entry was not open in the period."
    )


class EntryDetailOut(EntryUsageOut):
    """One entry point's contacts in a period, also per service."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    services: list[ServiceUsageOut] = Field(description="Services with contacts, most first.")


class EntriesUsageReport(BaseModel):
    """Every entry point's contacts in a period (by id); the open place-bound entries of the
    selection are listed with zero contacts too."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    channel: PlaceChannel | None
    service: str | None
    total: TallyOut = Field(description="All listed entries together.")
    entries: list[EntryUsageOut]


class RankingReport(BaseModel):
    """The least or most used entry points of a period."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    channel: PlaceChannel | None
    service: str | None
    order: Order
    measure: Measure
    entries: list[EntryUsageOut]


class SiteEntryOut(BaseModel):
    """An entry at a site."""

    entry_id: str
    name: str | None
    kind: EntryKind | None
    administration: Administration | None
    contacts: int


class AdministrationUsageOut(TallyOut):
    """The contacts at a site of the entries one administration runs there."""

    administration: Administration | None = Field(
        description="null: contacts not tied to a known entry (e.g. a mobile visit at a site "
        "without a mobile stop)."
    )
    entries: list[str]


class SiteUsageOut(TallyOut):
    """One site's (building's) contacts, split by the administrations sharing it."""

    site_id: str
    name: str | None = Field(description="null: the registry has not told of this site.")
    district: District | None
    owner: Administration | None
    retired: bool
    colocated: bool = Field(description="Entries of more than one administration are here.")
    entries: list[SiteEntryOut]
    administrations: list[AdministrationUsageOut] = Field(
        description="Their contacts add up to the site's."
    )


class SitesUsageReport(BaseModel):
    """Every site's contacts in a period (by id)."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    district: District | None
    channel: PlaceChannel | None
    service: str | None
    sites: list[SiteUsageOut]
    unlocated: TallyOut = Field(
        description="Selected contacts at an entry whose site is unknown (not yet told of by "
        "the registry, or an entry without a building)."
    )


# -- reading -----------------------------------------------------------------------------------


def tally_out(tally: Tally) -> TallyOut:
    """The response shape of a tally."""
    return TallyOut(
        contacts=tally.total,
        self_service=tally.self_service,
        assisted=tally.assisted,
        channels={
            PlaceChannel(channel.value): ModesOut(
                self_service=modes[ContactMode.SELF_SERVICE],
                assisted=modes[ContactMode.ASSISTED],
                total=sum(modes.values()),
            )
            for channel, modes in tally.channels.items()
        },
    )


def _entry_out(usage: EntryUsage, site_names: dict[str, str]) -> EntryUsageOut:
    entry = usage.entry
    return EntryUsageOut(
        **tally_out(usage.tally).model_dump(),
        entry_id=usage.entry_id,
        name=entry.name if entry is not None else None,
        kind=entry.kind if entry is not None else None,
        site_id=usage.site_id,
        site_name=site_names.get(usage.site_id) if usage.site_id is not None else None,
        administration=entry.administration if entry is not None else None,
        district=usage.district,
        status=entry.status.value if entry is not None else None,
        retired=entry.retired if entry is not None else False,
        open_hours=round(usage.open_hours, 2) if usage.open_hours is not None else None,
        contacts_per_open_hour=usage.per_open_hour,
    )


def _selection(
    district: District | None, channel: PlaceChannel | None, service: str | None
) -> UsageFilter:
    return UsageFilter(
        district=district,
        channel=Channel(channel.value) if channel is not None else None,
        service=service,
    )


# -- routes ------------------------------------------------------------------------------------


@router.get(
    "/entries",
    response_model=EntriesUsageReport,
    responses=READ_PROBLEMS,
    summary="Contacts per entry point for a period, by channel and mode, per open hour",
)
async def get_entry_usage(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
    channel: ChannelQuery = None,
    service: ServiceQuery = None,
) -> EntriesUsageReport:
    """Each entry point's KVIK, counter and mobile contacts in the period, its open hours from
    the registry and the contacts per open hour; open entries without contacts are listed
    with zeros. Sorted by entry id."""
    first, last = domain.period_days(period, date)
    selection = _selection(district, channel, service)
    usage = await usage_figures.entries_between(store, runtime.redis, first, last, selection)
    total = Tally()
    for place in usage.values():
        total.merge(place.tally)
    names = await usage_figures.site_names(store, runtime.redis)
    return EntriesUsageReport(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        channel=channel,
        service=service,
        total=tally_out(total),
        entries=[_entry_out(place, names) for place in usage.values()],
    )


@router.get(
    "/entries/ranking",
    response_model=RankingReport,
    responses=READ_PROBLEMS,
    summary="The least or most used entry points of a period",
)
async def get_entry_ranking(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    order: Annotated[Order, Query(description="least or most used first.")] = Order.MOST,
    measure: Annotated[
        Measure,
        Query(description="contacts, or contacts per open hour (fair to short opening hours)."),
    ] = Measure.CONTACTS,
    limit: Annotated[QueryInt, Query(ge=1, le=100, description="How many entries.")] = 5,
    district: DistrictQuery = None,
    channel: ChannelQuery = None,
    service: ServiceQuery = None,
) -> RankingReport:
    """Only entries open in the period (or with contacts) take part: an open entry without
    contacts is among the least used; one closed all period is not ranked. Ties by entry id."""
    first, last = domain.period_days(period, date)
    selection = _selection(district, channel, service)
    usage = await usage_figures.entries_between(store, runtime.redis, first, last, selection)
    names = await usage_figures.site_names(store, runtime.redis)
    return RankingReport(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        channel=channel,
        service=service,
        order=order,
        measure=measure,
        entries=[
            _entry_out(place, names) for place in ranking(usage.values(), order, measure, limit)
        ],
    )


@router.get(
    "/entries/{entry_id}",
    response_model=EntryDetailOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="One entry point's contacts for a period, by channel, mode and service",
)
async def get_entry_detail(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    entry_id: EntryIdPath,
    period: PeriodQuery,
    date: DateQuery,
) -> EntryDetailOut:
    """The entry's contacts per channel and mode, and per catalogue service; 404 when the
    registry has not told of the entry and it had no contacts in the period."""
    first, last = domain.period_days(period, date)
    place = await usage_figures.entry_between(store, runtime.redis, entry_id, first, last)
    if place is None:
        raise Problem(404, None, "Not Found", detail=f"No entry {entry_id}.")
    names = await usage_figures.site_names(store, runtime.redis)
    services = sorted(place.services.items(), key=lambda item: (-item[1].total, item[0]))
    return EntryDetailOut(
        **_entry_out(place, names).model_dump(),
        period=period,
        first_day=first,
        last_day=last,
        services=[
            ServiceUsageOut(**tally_out(tally).model_dump(), service=service)
            for service, tally in services
        ],
    )


def _administration_out(part: AdministrationUsage) -> AdministrationUsageOut:
    return AdministrationUsageOut(
        **tally_out(part.tally).model_dump(),
        administration=part.administration,
        entries=part.entries,
    )


def _site_out(
    place: SiteUsage, usage_of: dict[str, EntryUsage], registry: dict[str, RegistryEntry]
) -> SiteUsageOut:
    site = place.site
    entries = []
    for entry_id in place.entries:
        entry = registry.get(entry_id)
        used = usage_of.get(entry_id)
        entries.append(
            SiteEntryOut(
                entry_id=entry_id,
                name=entry.name if entry is not None else None,
                kind=entry.kind if entry is not None else None,
                administration=entry.administration if entry is not None else None,
                contacts=used.tally.total if used is not None else 0,
            )
        )
    parts = sorted(
        place.administrations.values(),
        key=lambda part: (part.administration is None, part.administration or ""),
    )
    return SiteUsageOut(
        **tally_out(place.tally).model_dump(),
        site_id=place.site_id,
        name=site.name if site is not None else None,
        district=site.district if site is not None else None,
        owner=site.owner if site is not None else None,
        retired=site.retired if site is not None else False,
        colocated=place.colocated,
        entries=entries,
        administrations=[_administration_out(part) for part in parts],
    )


@router.get(
    "/sites",
    response_model=SitesUsageReport,
    responses=READ_PROBLEMS,
    summary="Contacts per site (building) for a period, split by the administrations sharing it",
)
async def get_site_usage(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: PeriodQuery,
    date: DateQuery,
    district: DistrictQuery = None,
    channel: ChannelQuery = None,
    service: ServiceQuery = None,
) -> SitesUsageReport:
    """Each site's contacts at all its entries (and contacts at the site without an entry),
    by channel and mode, and per administration running entries there (co-location). A KVIK
    contact counts at its entry's site as the registry knows it now."""
    first, last = domain.period_days(period, date)
    selection = _selection(district, channel, service)
    usage = await usage_figures.sites_between(store, runtime.redis, first, last, selection)
    return SitesUsageReport(
        period=period,
        first_day=first,
        last_day=last,
        district=district,
        channel=channel,
        service=service,
        sites=[_site_out(place, usage.per_entry, usage.entries) for place in usage.sites.values()],
        unlocated=tally_out(usage.unlocated),
    )
