"""Usage per building and entry point: the place-bound contacts (KVIK, counter, mobile) of a
period summed per entry and per site, with the registry copy's names, administrations and
opening hours. Pure functions on the store's usage cells; no I/O.

A contact's entry is the one its event named. Its site is the one the event named (counter,
mobile) or else its entry's site in the registry copy (KVIK sessions name only their entry), so
an entry moved to another building counts at its new site from then on, for reads of the past
too. A contact at a site without an entry (a mobile visit where the registry has no mobile
stop) counts at the site only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.contracts import (
    Administration,
    Channel,
    ContactMode,
    District,
    EntryKind,
    EntryStatus,
)
from services.contracts.opening_hours import open_hours
from services.metrics.store import RegistryEntry, RegistrySite, UsageCell

PLACE_CHANNELS: tuple[Channel, ...] = (Channel.KVIK, Channel.COUNTER, Channel.MOBILE)
"""The channels whose contacts happen at a place."""

PLACELESS_KINDS = frozenset({EntryKind.DIGITAL, EntryKind.CONTACT_CENTRE})
"""Entry kinds without a building: they never have place-bound contacts."""

HOME_KINDS: dict[Channel, frozenset[EntryKind]] = {
    Channel.KVIK: frozenset({EntryKind.KVIK_POINT}),
    Channel.COUNTER: frozenset({EntryKind.CITIZEN_SERVICE_CENTRE}),
    Channel.MOBILE: frozenset({EntryKind.MOBILE_STOP}),
}
"""The kinds of entry a channel's contacts are expected at: with a channel filter, open entries
of these kinds are listed (and ranked) even without contacts; others only when they had some."""


class PlaceChannel(StrEnum):
    """A channel whose contacts happen at a place (the usage questions' channel filter)."""

    KVIK = "kvik"
    COUNTER = "counter"
    MOBILE = "mobile"


class Order(StrEnum):
    """Which end of a ranking: the least or the most used entries."""

    LEAST = "least"
    MOST = "most"


class Measure(StrEnum):
    """What a ranking compares: contacts, or contacts per open hour (fair to short hours)."""

    CONTACTS = "contacts"
    PER_OPEN_HOUR = "per_open_hour"


@dataclass
class Tally:
    """Contacts by place-bound channel and mode; the total is the sum of its channels."""

    channels: dict[Channel, dict[ContactMode, int]] = field(
        default_factory=lambda: {c: {m: 0 for m in ContactMode} for c in PLACE_CHANNELS}
    )

    def add(self, channel: Channel, mode: ContactMode, count: int) -> None:
        """Count ``count`` contacts of ``channel`` in ``mode``."""
        modes = self.channels.setdefault(channel, {m: 0 for m in ContactMode})
        modes[mode] += count

    def merge(self, other: Tally) -> None:
        """Count ``other``'s contacts too."""
        for channel, modes in other.channels.items():
            for mode, count in modes.items():
                self.add(channel, mode, count)

    def of_mode(self, mode: ContactMode) -> int:
        """Contacts in ``mode`` over all channels."""
        return sum(modes[mode] for modes in self.channels.values())

    @property
    def self_service(self) -> int:
        """Self-service contacts."""
        return self.of_mode(ContactMode.SELF_SERVICE)

    @property
    def assisted(self) -> int:
        """Assisted contacts."""
        return self.of_mode(ContactMode.ASSISTED)

    @property
    def total(self) -> int:
        """All contacts: the sum over channels and modes."""
        return sum(sum(modes.values()) for modes in self.channels.values())


@dataclass(frozen=True)
class UsageFilter:
    """What a usage question selects; None means all."""

    district: District | None = None
    channel: Channel | None = None
    service: str | None = None

    def takes(self, cell: UsageCell) -> bool:
        """Whether ``cell``'s contacts are selected."""
        return (
            cell.channel in PLACE_CHANNELS
            and (self.district is None or cell.district is self.district)
            and (self.channel is None or cell.channel is self.channel)
            and (self.service is None or cell.service == self.service)
        )

    def lists(self, entry: RegistryEntry) -> bool:
        """Whether an entry without contacts belongs in the answer: open now, at a building,
        in the district, and (with a channel) of a kind that channel serves."""
        return (
            not entry.retired
            and entry.status is EntryStatus.OPEN
            and entry.kind not in PLACELESS_KINDS
            and (self.district is None or entry.district is self.district)
            and (self.channel is None or entry.kind in HOME_KINDS.get(self.channel, ()))
        )


@dataclass
class EntryUsage:
    """One entry point's contacts in a period."""

    entry_id: str
    entry: RegistryEntry | None
    """The registry copy's entry; None when the registry has not told of it."""
    site_id: str | None
    district: District | None = None
    """The registry's district of the entry; else the district its contacts were counted in."""
    tally: Tally = field(default_factory=Tally)
    services: dict[str, Tally] = field(default_factory=dict)
    """Per service, when the cells were read by service."""
    open_hours: float | None = None
    """Hours open in the period (None without opening hours from the registry)."""

    @property
    def per_open_hour(self) -> float | None:
        """Contacts per open hour; None when the entry was not open (or hours are unknown)."""
        if not self.open_hours:
            return None
        return self.tally.total / self.open_hours


@dataclass
class AdministrationUsage:
    """The contacts at a site of the entries one administration runs there."""

    administration: Administration | None
    """None: contacts not tied to a known entry (a mobile visit at the site without a mobile
    stop, or an entry the registry has not told of)."""
    entries: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


@dataclass
class SiteUsage:
    """One site's (building's) contacts in a period, split by the administrations whose
    entries share it."""

    site_id: str
    site: RegistrySite | None
    entries: list[str] = field(default_factory=list)
    """Entries at the site: the registry's live ones, and any with contacts in the period."""
    tally: Tally = field(default_factory=Tally)
    administrations: dict[Administration | None, AdministrationUsage] = field(default_factory=dict)

    @property
    def colocated(self) -> bool:
        """True when entries of more than one administration are at the site."""
        return len({a for a in self.administrations if a is not None}) > 1


def site_of(cell: UsageCell, entries: Mapping[str, RegistryEntry]) -> str | None:
    """The site a cell's contacts happened at: named by the event, or its entry's site."""
    if cell.site_id is not None:
        return cell.site_id
    entry = entries.get(cell.entry_id) if cell.entry_id is not None else None
    return entry.site_id if entry is not None else None


def entry_usage(
    cells: Iterable[UsageCell],
    entries: Mapping[str, RegistryEntry],
    selection: UsageFilter,
    first: dt.date,
    last: dt.date,
    until: dt.datetime | None = None,
    *,
    with_hours: bool = True,
) -> dict[str, EntryUsage]:
    """Every entry's usage from ``first`` to ``last``, by entry id: those with selected
    contacts, and the open place-bound entries the selection lists without any. Open hours
    are counted up to ``until`` (now, for a period that has not ended) unless ``with_hours``
    is false."""
    usage: dict[str, EntryUsage] = {}

    def of(entry_id: str) -> EntryUsage:
        found = usage.get(entry_id)
        if found is None:
            entry = entries.get(entry_id)
            found = usage[entry_id] = EntryUsage(
                entry_id,
                entry,
                entry.site_id if entry is not None else None,
                entry.district if entry is not None else None,
            )
        return found

    for cell in cells:
        if cell.entry_id is None or not selection.takes(cell):
            continue
        place = of(cell.entry_id)
        place.tally.add(cell.channel, cell.mode, cell.count)
        if cell.service:
            place.services.setdefault(cell.service, Tally()).add(
                cell.channel, cell.mode, cell.count
            )
        if place.site_id is None and cell.site_id is not None:
            place.site_id = cell.site_id
        if place.district is None:
            place.district = cell.district
    for entry_id, entry in entries.items():
        if entry_id not in usage and selection.lists(entry):
            of(entry_id)
    if with_hours:
        for place in usage.values():
            count_open_hours(place, first, last, until)
    return dict(sorted(usage.items()))


def count_open_hours(
    place: EntryUsage, first: dt.date, last: dt.date, until: dt.datetime | None = None
) -> None:
    """Set ``place.open_hours`` from its registry opening hours (staffed entries close on
    public holidays); left None when the registry has not told of the entry."""
    if place.entry is not None and place.entry.opening_hours is not None:
        place.open_hours = open_hours(
            place.entry.opening_hours,
            first,
            last,
            closes_on_holidays=bool(place.entry.staff_help),
            until=until,
        )


def site_usage(
    cells: Iterable[UsageCell],
    entries: Mapping[str, RegistryEntry],
    sites: Mapping[str, RegistrySite],
    selection: UsageFilter,
) -> tuple[dict[str, SiteUsage], Tally]:
    """Every site's usage, by site id, split by administration; and the selected contacts
    whose site is unknown (a KVIK entry the registry has not told of, or one without a site).

    Sites listed: those with selected contacts, and live sites of the district (when given)
    with a live entry the selection lists.
    """
    usage: dict[str, SiteUsage] = {}
    unlocated = Tally()

    def of(site_id: str) -> SiteUsage:
        found = usage.get(site_id)
        if found is None:
            found = usage[site_id] = SiteUsage(site_id, sites.get(site_id))
        return found

    def administration_of(place: SiteUsage, entry_id: str | None) -> AdministrationUsage:
        entry = entries.get(entry_id) if entry_id is not None else None
        administration = entry.administration if entry is not None else None
        part = place.administrations.get(administration)
        if part is None:
            part = place.administrations[administration] = AdministrationUsage(administration)
        if entry_id is not None:
            if entry_id not in part.entries:
                part.entries.append(entry_id)
            if entry_id not in place.entries:
                place.entries.append(entry_id)
        return part

    for cell in cells:
        if not selection.takes(cell):
            continue
        site_id = site_of(cell, entries)
        if site_id is None:
            unlocated.add(cell.channel, cell.mode, cell.count)
            continue
        place = of(site_id)
        place.tally.add(cell.channel, cell.mode, cell.count)
        administration_of(place, cell.entry_id).tally.add(cell.channel, cell.mode, cell.count)
    for entry_id, entry in sorted(entries.items()):
        if entry.site_id is None or entry.retired:
            continue
        site = sites.get(entry.site_id)
        listed = selection.lists(entry) and (site is None or not site.retired)
        if entry.site_id in usage or listed:
            administration_of(of(entry.site_id), entry_id)
    for place in usage.values():
        place.entries.sort()
        for part in place.administrations.values():
            part.entries.sort()
    return dict(sorted(usage.items())), unlocated


def ranking(
    usage: Iterable[EntryUsage], order: Order, measure: Measure, limit: int
) -> list[EntryUsage]:
    """The ``limit`` least or most used entries. Only entries that were open in the period
    (open hours above zero) or had contacts take part, so an entry closed all period is not
    "least used"; by contacts per open hour, only entries with open hours. Ties go by id."""

    def value(place: EntryUsage) -> float:
        if measure is Measure.PER_OPEN_HOUR:
            return place.per_open_hour or 0.0
        return float(place.tally.total)

    if measure is Measure.PER_OPEN_HOUR:
        taking = [p for p in usage if p.open_hours]
    else:
        taking = [p for p in usage if p.open_hours or p.tally.total]
    if order is Order.MOST:
        taking.sort(key=lambda p: (-value(p), p.entry_id))
    else:
        taking.sort(key=lambda p: (value(p), p.entry_id))
    return taking[:limit]
