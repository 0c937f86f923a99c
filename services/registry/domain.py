"""The registry's rules: validation of opening hours and entries, the entry filter, the
coverage and co-location reports, and the errors a use case refuses with (``service.py``
raises them, ``api.py`` maps each to its problem). Pure functions on the contract's payload
models; no I/O.

Evaluating opening hours (holidays included), the reference geography and distance are the
contract's (``services/contracts/opening_hours.py``, ``services/contracts/geography.py``): every
service judges them the same way."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from services.contracts.geography import COPENHAGEN
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
from services.registry.schemas import (
    ColocationCandidate,
    ColocationReport,
    CoverageReport,
    DistrictCoverage,
    EntryIn,
    SharedSite,
)


class RegistryError(Exception):
    """A use case refused the request; ``api.py`` maps each kind to its problem."""


class RecordNotFound(RegistryError):
    """No record of that kind with that id."""

    def __init__(self, kind: str, agg_id: str) -> None:
        super().__init__(f"No {kind} {agg_id}.")
        self.kind = kind
        self.agg_id = agg_id


class IdTaken(RegistryError):
    """A create named an id that is taken."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"The {kind} id is taken.")
        self.kind = kind


class VersionStale(RegistryError):
    """The record is not at the version the change was based on (``current``: its version,
    None when a concurrent writer kept getting in first)."""

    def __init__(self, current: int | None) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


class AlreadyRetired(RegistryError):
    """Retiring twice would publish a second retirement."""


class SiteInUse(RegistryError):
    """A site cannot retire while entries that are not closed use it."""

    def __init__(self, entry_ids: list[str]) -> None:
        super().__init__(f"Close its entries first: {entry_ids}.")
        self.entry_ids = entry_ids


class ChangedMeanwhile(RegistryError):
    """Records of an import changed while it was checked; nothing was imported."""


class InvalidInput(RegistryError):
    """The input breaks the rules; ``problems`` names every invalid field at once."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def contract_problems(error: ValidationError) -> list[FieldProblem]:
    """The fields of a request body the contract's payload model refused, as ``body.<field>``.

    A model-level refusal (no location) that is about the district is put on ``district``."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        message = str(item["msg"])
        if not loc and "district" in message:
            loc = ["district"]
        problems.append(FieldProblem(field=".".join(["body", *loc]), message=message))
    return problems


def as_copenhagen(when: dt.datetime | None) -> dt.datetime | None:
    """``when`` with Copenhagen as its zone if it has no offset."""
    # A time without an offset is what a citizen means on the clock in Copenhagen.
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=COPENHAGEN)


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


def coverage_report(entries: Iterable[EntryUpserted]) -> CoverageReport:
    """Per district, the open citizen-service entries, and the districts with none."""
    per_district: dict[District, list[str]] = {district: [] for district in District}
    for entry in entries:
        if (
            entry.status is EntryStatus.OPEN
            and entry.kind in CITIZEN_SERVICE_KINDS
            and entry.district is not None
        ):
            per_district[entry.district].append(entry.entry_id)
    return CoverageReport(
        districts=[
            DistrictCoverage(
                district=district,
                name=district.display_name,
                citizen_service_entries=sorted(ids),
                covered=bool(ids),
            )
            for district, ids in per_district.items()
        ],
        missing=[district for district, ids in per_district.items() if not ids],
    )


def colocation_report(
    sites: Sequence[SiteUpserted], entries: Iterable[EntryUpserted]
) -> ColocationReport:
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
        SharedSite(
            site_id=site_id,
            name=site_by_id[site_id].name,
            district=site_by_id[site_id].district,
            administrations=sorted(admins, key=lambda admin: admin.value),
            entries=sorted(entries_at[site_id]),
        )
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
                ColocationCandidate(
                    district=district,
                    separate_sites={admin: sorted(ids) for admin, ids in sorted(solo.items())},
                )
            )
    return ColocationReport(shared_sites=shared, candidates=candidates)


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
