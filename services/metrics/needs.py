"""General and special needs: the split of the share that the target is about.

About 80 % of enquiries concern **general needs** (moving, passport, childcare place ...);
the cross-government target of 80 % digital self-service is about them. Citizens with
**special needs** (social counselling, treatment, home care ...) are meant to get personal
contact first, so their contacts are reported apart and never count against a district.

A contact belongs to the group of its service in the registry's catalogue (the metrics
service's copy, ``store.general_needs``). The split is made when figures are *read*, from the
per-service rollups, with the catalogue as it is then: history follows the current catalogue
(a service moved to the other group moves its past with it, so a trend never jumps at the
reclassification), and ``kanalhub metrics rebuild`` reproduces it exactly, since no new
aggregate is written. A service the catalogue does not know (an event that came before the
registry told of it, a code it never had) counts as **general**, the group the registry gives
a service unless it is marked otherwise: special needs are the marked exception. The special
group is therefore exactly the catalogue's special-needs services, and the general group is
everything else - so general + special == overall, always, by construction.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.contracts import Channel, ContactMode, District
from services.metrics.domain import CellKey, Share


class NeedsGroup(StrEnum):
    """The two groups of enquiries (seed 001: almene / særlige behov)."""

    GENERAL = "general"
    SPECIAL = "special"


HEADLINE_GROUP = NeedsGroup.GENERAL
"""The group whose share is the headline and what the target and the forecast are about."""


def special_services(general_needs: Mapping[str, bool]) -> frozenset[str]:
    """The service codes of the special-needs group, from the catalogue copy's
    ``{code: general?}`` (retired services keep their group, for history)."""
    return frozenset(code for code, general in general_needs.items() if not general)


def group_of(service: str, special: Collection[str]) -> NeedsGroup:
    """The group of ``service``: special when the catalogue marks it so, else general (an
    unknown service is general)."""
    return NeedsGroup.SPECIAL if service in special else NeedsGroup.GENERAL


def difference(whole: Share, part: Share) -> Share:
    """The contacts of ``whole`` that are not in ``part`` (``part`` is a subset of it)."""
    rest = Share(self_service=whole.self_service - part.self_service)
    rest.assisted = whole.assisted - part.assisted
    for channel, modes in whole.channels.items():
        for mode, count in modes.items():
            rest.channels[channel][mode] = count - part.channels[channel][mode]
    return rest


@dataclass
class NeedsShares:
    """A selection's contacts: all of them, and split into general and special needs."""

    overall: Share = field(default_factory=Share)
    general: Share = field(default_factory=Share)
    special: Share = field(default_factory=Share)

    @property
    def headline(self) -> Share:
        """The general-needs figures: what the target is about."""
        return self.general

    def group(self, group: NeedsGroup) -> Share:
        """The figures of one group."""
        return self.general if group is NeedsGroup.GENERAL else self.special

    def merge(self, other: NeedsShares) -> None:
        """Count ``other``'s contacts too."""
        self.overall.merge(other.overall)
        self.general.merge(other.general)
        self.special.merge(other.special)


def split(overall: Share, special: Share) -> NeedsShares:
    """The split of ``overall`` whose special-needs part is ``special``: general is the rest."""
    return NeedsShares(overall=overall, general=difference(overall, special), special=special)


def split_by_district(
    mix: Iterable[Mapping[CellKey, int]], special_cells: Iterable[Mapping[CellKey, int]]
) -> dict[District, NeedsShares]:
    """Every district's split (all services): ``mix`` holds all contacts (summed over
    services), ``special_cells`` the contacts of the special-needs services only."""
    overall = {district: Share() for district in District}
    special = {district: Share() for district in District}
    for day_cells in mix:
        for cell, count in day_cells.items():
            overall[cell.district].add(cell, count)
    for day_cells in special_cells:
        for cell, count in day_cells.items():
            special[cell.district].add(cell, count)
    return {district: split(overall[district], special[district]) for district in District}


def split_service_by_district(
    cells: Iterable[Mapping[CellKey, int]], service: str, special: Collection[str]
) -> dict[District, NeedsShares]:
    """Every district's split for one ``service``: all its contacts are in its group."""
    result = {district: NeedsShares() for district in District}
    group = group_of(service, special)
    for day_cells in cells:
        for cell, count in day_cells.items():
            if cell.service == service:
                result[cell.district].overall.add(cell, count)
                result[cell.district].group(group).add(cell, count)
    return result


def total_of(shares: Mapping[District, NeedsShares]) -> NeedsShares:
    """The split of all districts together."""
    total = NeedsShares()
    for share in shares.values():
        total.merge(share)
    return total


def special_fields(special: Collection[str]) -> list[CellKey]:
    """Every cell a special-needs service can have in a ``cells`` rollup (district x channel x
    mode x service), so that only those are read."""
    return [
        CellKey(district, channel, mode, service)
        for service in sorted(special)
        for district in District
        for channel in Channel
        for mode in ContactMode
    ]
