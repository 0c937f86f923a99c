"""The registry's rules: opening hours, validation, distances and the coverage and co-location
reports. Pure functions on the contract's payload models; no I/O."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from services.contracts.payloads.registry import (
    EntryUpserted,
    OpeningHours,
    SiteUpserted,
    WeeklyOpening,
)
from services.contracts.reference import (
    CITIZEN_SERVICE_KINDS,
    Administration,
    District,
    EntryKind,
    EntryStatus,
)
from services.plumbing.problems import FieldProblem
from services.registry.schemas import EntryIn

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
"""Every opening hour is local Copenhagen wall-clock time (tzdata ships it, see pyproject)."""

# A generous box around Copenhagen Municipality (incl. Amager and the harbour); a site outside
# it is a typo (swapped latitude/longitude, a missing digit), not a real municipal building.
LATITUDE_RANGE = (55.60, 55.74)
LONGITUDE_RANGE = (12.45, 12.66)

EARTH_RADIUS_KM = 6371.0088


@lru_cache(maxsize=64)
def _danish_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year)


def public_holiday(day: dt.date) -> str | None:
    """The name of the Danish public holiday on ``day``, or None."""
    name = _danish_holidays(day.year).get(day)
    return str(name) if name is not None else None


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def is_open_at(hours: OpeningHours, when: dt.datetime, *, closes_on_holidays: bool = True) -> bool:
    """Whether ``hours`` are open at the instant ``when`` (timezone-aware).

    The instant is turned into Copenhagen wall-clock time first, so the same UTC instant is
    09:30 in summer and 08:30 in winter. A dated exception replaces that day's weekly hours;
    without one, a Danish public holiday is closed unless ``closes_on_holidays`` is false
    (self-service channels such as the digital one, which need no staff).
    """
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    local = when.astimezone(COPENHAGEN)
    day = local.date()
    now = local.hour * 60 + local.minute
    for exception in hours.exceptions:
        if exception.date == day:
            if exception.closed or exception.opens is None or exception.closes is None:
                return False
            return _minutes(exception.opens) <= now < _minutes(exception.closes)
    if closes_on_holidays and public_holiday(day) is not None:
        return False
    return any(
        _minutes(interval.opens) <= now < _minutes(interval.closes)
        for interval in hours.weekly
        if interval.weekday == day.weekday()
    )


def opening_hour_problems(weekly: Sequence[WeeklyOpening], field: str) -> list[FieldProblem]:
    """Overlapping weekly intervals on one weekday (inverted ones the contract refuses itself)."""
    problems: list[FieldProblem] = []
    by_day: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for index, interval in enumerate(weekly):
        by_day[interval.weekday].append(
            (_minutes(interval.opens), _minutes(interval.closes), index)
        )
    for intervals in by_day.values():
        intervals.sort()
        latest_close = -1
        # Sorted by opening time, an interval overlaps an earlier one exactly when it opens
        # before the latest closing time seen so far (a nested interval included).
        for opens, closes, index in intervals:
            if opens < latest_close:
                problems.append(
                    FieldProblem(
                        field=f"{field}.weekly[{index}]",
                        message="overlaps another interval on the same weekday",
                    )
                )
            latest_close = max(latest_close, closes)
    return problems


def coordinate_problems(
    latitude: float, longitude: float, prefix: str = "body"
) -> list[FieldProblem]:
    """Coordinates outside the box around Copenhagen, one problem per field."""
    problems = []
    if not LATITUDE_RANGE[0] <= latitude <= LATITUDE_RANGE[1]:
        problems.append(
            FieldProblem(field=f"{prefix}.latitude", message="is outside Copenhagen's area")
        )
    if not LONGITUDE_RANGE[0] <= longitude <= LONGITUDE_RANGE[1]:
        problems.append(
            FieldProblem(field=f"{prefix}.longitude", message="is outside Copenhagen's area")
        )
    return problems


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km. Plenty accurate at city scale (error well below 0.5 %)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class EntryFilter:
    """The query of ``GET /entries``; ``None`` means "any"."""

    district: District | None = None
    kind: EntryKind | None = None
    administration: Administration | None = None
    entry_type: str | None = None
    service: str | None = None
    status: EntryStatus | None = None
    open_at: dt.datetime | None = None

    def matches(self, entry: EntryUpserted) -> bool:
        """Whether ``entry`` passes every given criterion."""
        return (
            (self.district is None or entry.district == self.district)
            and (self.kind is None or entry.kind == self.kind)
            and (self.administration is None or entry.administration == self.administration)
            and (self.entry_type is None or entry.entry_type == self.entry_type)
            and (self.service is None or self.service in entry.services)
            and (self.status is None or entry.status == self.status)
            and (
                self.open_at is None
                or (
                    entry.status is EntryStatus.OPEN
                    # Staffed entries close on public holidays; self-service ones do not.
                    and is_open_at(
                        entry.opening_hours,
                        self.open_at,
                        closes_on_holidays=bool(entry.staff_help),
                    )
                )
            )
        )


def coverage_report(entries: Iterable[EntryUpserted]) -> dict[str, object]:
    """Per district, the open citizen-service entries, and the districts with none."""
    per_district: dict[District, list[str]] = {district: [] for district in District}
    for entry in entries:
        if (
            entry.status is EntryStatus.OPEN
            and entry.kind in CITIZEN_SERVICE_KINDS
            and entry.district is not None
        ):
            per_district[entry.district].append(entry.entry_id)
    return {
        "districts": [
            {
                "district": district.value,
                "name": district.display_name,
                "citizen_service_entries": sorted(ids),
                "covered": bool(ids),
            }
            for district, ids in per_district.items()
        ],
        "missing": [district.value for district, ids in per_district.items() if not ids],
    }


def colocation_report(
    sites: Sequence[SiteUpserted], entries: Iterable[EntryUpserted]
) -> dict[str, object]:
    """Sites shared by several administrations, and per district the administrations that run
    entries at separate sites (candidates for sharing one)."""
    live = [e for e in entries if e.status is not EntryStatus.CLOSED and e.site_id is not None]
    site_by_id = {site.site_id: site for site in sites}
    admins_at: dict[str, set[Administration]] = defaultdict(set)
    entries_at: dict[str, list[str]] = defaultdict(list)
    for entry in live:
        assert entry.site_id is not None  # filtered above
        admins_at[entry.site_id].add(entry.administration)
        entries_at[entry.site_id].append(entry.entry_id)
    shared = [
        {
            "site_id": site_id,
            "name": site_by_id[site_id].name,
            "district": site_by_id[site_id].district.value,
            "administrations": sorted(a.value for a in admins),
            "entries": sorted(entries_at[site_id]),
        }
        for site_id, admins in sorted(admins_at.items())
        if len(admins) > 1 and site_id in site_by_id
    ]
    # Per district: which sites each administration uses on its own (no other administration
    # there). Two or more such single-administration sites in a district could share a roof.
    candidates = []
    for district in District:
        solo: dict[str, list[str]] = {}
        for site_id, admins in sorted(admins_at.items()):
            site = site_by_id.get(site_id)
            if site is None or site.district is not district or len(admins) != 1:
                continue
            (admin,) = admins
            solo.setdefault(admin.value, []).append(site_id)
        if len(solo) > 1:
            candidates.append(
                {
                    "district": district.value,
                    "separate_sites": {admin: sorted(ids) for admin, ids in sorted(solo.items())},
                }
            )
    return {"shared_sites": shared, "candidates": candidates}


def entry_problems(
    body: EntryIn,
    entry_id: str,
    live_sites: set[str],
    entries: Iterable[EntryUpserted],
    catalogue: set[str],
    prefix: str,
) -> list[FieldProblem]:
    """What is wrong with ``body`` beyond its shape: an unknown site or service code, a name
    another entry at the same site already has, overlapping opening hours. Field names start
    with ``prefix`` (``body`` for a request, ``entries[3]`` in an import)."""
    problems: list[FieldProblem] = []
    if body.site_id is not None:
        if body.site_id not in live_sites:
            problems.append(FieldProblem(field=f"{prefix}.site_id", message="no such site"))
        else:
            name = body.name.casefold()
            if any(
                other.site_id == body.site_id
                and other.entry_id != entry_id
                and other.status is not EntryStatus.CLOSED
                and other.name.casefold() == name
                for other in entries
            ):
                problems.append(
                    FieldProblem(field=f"{prefix}.name", message="another entry at the site has it")
                )
    for index, code in enumerate(body.services):
        if code not in catalogue:
            problems.append(
                FieldProblem(field=f"{prefix}.services[{index}]", message="not in the catalogue")
            )
    problems.extend(opening_hour_problems(body.opening_hours.weekly, f"{prefix}.opening_hours"))
    return problems
