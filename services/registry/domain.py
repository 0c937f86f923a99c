"""The registry's rules: validation of opening hours and entries, the entry filter, and the
coverage and co-location reports. Pure functions on the contract's payload models; no I/O.

Evaluating opening hours (holidays included), the reference geography and distance are the
contract's (``services/contracts/opening_hours.py``, ``services/contracts/geography.py``): every
service judges them the same way."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.contracts.opening_hours import is_open_at, minute_of_day
from services.contracts.payloads.registry import (
    EntryUpserted,
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


def opening_hour_problems(weekly: Sequence[WeeklyOpening], field: str) -> list[FieldProblem]:
    """Overlapping weekly intervals on one weekday (inverted ones the contract refuses itself)."""
    problems: list[FieldProblem] = []
    by_day: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for index, interval in enumerate(weekly):
        by_day[interval.weekday].append(
            (minute_of_day(interval.opens), minute_of_day(interval.closes), index)
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
