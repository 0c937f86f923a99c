"""How events become contacts (docs/architecture.md, "Counting contacts"), and how the share
is figured.

Pure functions, no I/O. A **contact** is one completed citizen interaction about one service
matter, counted on one Copenhagen day, for one district, channel, mode and service:

- a KVIK session completed with ``help`` ``none`` is one ``kvik`` / ``self_service`` contact;
  completed with any staff help (video, phone, in person) it is ``kvik`` / ``assisted``;
- a KVIK session abandoned is no contact; it is tallied apart, for the abandonment rate;
- a KVIK session referred is no contact on ``kvik`` (see :func:`tallies_of_session_referred`);
- a mobile ``contact.recorded`` is one ``mobile`` contact in the mode staff recorded;
- a ``count.reported`` from an external system carries a whole day's counts for its channel;
  it *replaces* the earlier report with the same key, see :func:`report_change`.

The day is the event's own time (when the session ended, when the contact was recorded) in
Europe/Copenhagen, so a kiosk uploading last week's backlog today changes last week.
A place-bound contact (KVIK, counter, mobile) also keeps the entry and site its event names,
for usage per building and entry point (``ContactCount.entry_id``/``site_id``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from services.contracts import (
    Channel,
    ContactMode,
    ContactRecorded,
    CountReported,
    District,
    HelpChannel,
    SessionAbandoned,
    SessionCompleted,
    SessionReferred,
)
from services.contracts.geography import COPENHAGEN
from services.contracts.payloads.mobile import VisitFields


def local_day(moment: dt.datetime) -> dt.date:
    """The Copenhagen calendar day ``moment`` (timezone-aware) falls on."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(COPENHAGEN).date()


def today_in_copenhagen(now: dt.datetime | None = None) -> dt.date:
    """The current Copenhagen day (of ``now`` when given, for tests)."""
    return local_day(now if now is not None else dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class ContactCount:
    """``count`` contacts (negative: taken back) on one day, district, channel, mode, service."""

    day: dt.date
    district: District
    channel: Channel
    mode: ContactMode
    service: str
    count: int = 1
    entry_id: str | None = None
    """The registry entry of a place-bound contact (KVIK, counter, mobile stop); None for the
    digital and phone channels, and for a mobile visit at a place without an entry."""
    site_id: str | None = None
    """The registry site of a place-bound contact when the event names it (counter, mobile);
    None when only the entry is known (KVIK: the site is the entry's site in the registry)."""


@dataclass(frozen=True)
class Abandonment:
    """One abandoned KVIK session: not a contact, counted for the abandonment rate."""

    day: dt.date
    district: District
    service: str


def tallies_of_session_completed(session: SessionCompleted) -> list[ContactCount]:
    """A completed KVIK session: one kvik contact, self-service only without staff help."""
    mode = ContactMode.SELF_SERVICE if session.help is HelpChannel.NONE else ContactMode.ASSISTED
    return [
        ContactCount(
            day=local_day(session.ended_at),
            district=session.district,
            channel=Channel.KVIK,
            mode=mode,
            service=session.service,
            # The site is the entry's site in the registry copy, resolved when usage is read
            # (a KVIK event names only its entry).
            entry_id=session.entry_id,
        )
    ]


def abandonment_of(session: SessionAbandoned) -> Abandonment:
    """An abandoned KVIK session, on the day it ended."""
    return Abandonment(
        day=local_day(session.ended_at), district=session.district, service=session.service
    )


def tallies_of_session_referred(session: SessionReferred) -> list[ContactCount]:
    """A referred KVIK session counts no contact at all.

    The citizen was sent to another channel (``referred_to``) to finish the matter; the
    contact is counted there, by the system of that channel (e.g. the contact centre's daily
    report), when the matter is finished. Counting it here too would count it twice.
    """
    del session
    return []


def tallies_of_contact_recorded(contact: ContactRecorded) -> list[ContactCount]:
    """A contact recorded at a mobile visit: one mobile contact in the recorded mode."""
    return [
        ContactCount(
            day=local_day(contact.at),
            district=contact.district,
            channel=Channel.MOBILE,
            mode=contact.mode,
            service=contact.service,
            entry_id=contact.entry_id,
            site_id=contact.site_id,
        )
    ]


def tallies_of_report(report: CountReported) -> list[ContactCount]:
    """The contacts one external report stands for (its day is already a Copenhagen day)."""
    return [
        ContactCount(report.day, report.district, report.channel, mode, report.service, count)
        for mode, count in (
            (ContactMode.SELF_SERVICE, report.self_service),
            (ContactMode.ASSISTED, report.assisted),
        )
    ]


def report_change(previous: tuple[int, int] | None, report: CountReported) -> tuple[int, int]:
    """What a report adds to the aggregates: its figures minus the ones it replaces.

    ``previous`` is ``(self_service, assisted)`` of the last report with the same key, or None.
    The same report delivered again changes nothing; a corrected one moves the difference.
    """
    before_self, before_assisted = previous or (0, 0)
    return report.self_service - before_self, report.assisted - before_assisted


def staffed_seconds(visit: VisitFields) -> int:
    """Staff time of a visit: its length times the staff assigned (utilisation's denominator)."""
    return round((visit.ends_at - visit.starts_at).total_seconds()) * len(visit.staff)


# -- periods and the share ---------------------------------------------------------------------


class Period(StrEnum):
    """A period the share is asked for: the day, ISO week or calendar month of a date."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_days(period: Period, day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the ``period`` containing ``day``."""
    if period is Period.DAY:
        return day, day
    if period is Period.WEEK:
        monday = day - dt.timedelta(days=day.weekday())
        return monday, monday + dt.timedelta(days=6)
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def period_name(period: Period, day: dt.date) -> str:
    """The name of the ``period`` containing ``day``: ``2024-01-15``, ``2024-W03``, ``2024-01``."""
    if period is Period.DAY:
        return day.isoformat()
    if period is Period.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class CellKey:
    """One aggregate cell of a day: district x channel x mode x service."""

    district: District
    channel: Channel
    mode: ContactMode
    service: str


_CHANNELS: tuple[Channel, ...] = tuple(Channel)
_MODES: tuple[ContactMode, ...] = tuple(ContactMode)
# (iterating an Enum class is slow; a year's trend makes thousands of Shares)


@dataclass
class Share:
    """Self-service and assisted contacts of a selection, and the counts per channel behind it."""

    self_service: int = 0
    assisted: int = 0
    channels: dict[Channel, dict[ContactMode, int]] = field(
        default_factory=lambda: {channel: dict.fromkeys(_MODES, 0) for channel in _CHANNELS}
    )

    @property
    def total(self) -> int:
        """All contacts."""
        return self.self_service + self.assisted

    @property
    def share(self) -> float | None:
        """Self-service contacts / all contacts; None when there are no contacts."""
        return self.self_service / self.total if self.total else None

    def merge(self, other: Share) -> None:
        """Count ``other``'s contacts too."""
        for channel, modes in other.channels.items():
            for mode, count in modes.items():
                self.channels[channel][mode] += count
        self.self_service += other.self_service
        self.assisted += other.assisted

    def add(self, cell: CellKey, count: int) -> None:
        """Count ``count`` contacts of ``cell``."""
        self.channels[cell.channel][cell.mode] += count
        if cell.mode is ContactMode.SELF_SERVICE:
            self.self_service += count
        else:
            self.assisted += count


def share_of(
    cells: Iterable[Mapping[CellKey, int]],
    district: District | None = None,
    service: str | None = None,
) -> Share:
    """The share over days of cells, for one district and/or service (None: all)."""
    result = Share()
    for day_cells in cells:
        for cell, count in day_cells.items():
            if district is not None and cell.district is not district:
                continue
            if service is not None and cell.service != service:
                continue
            result.add(cell, count)
    return result


def shares_by_district(
    cells: Sequence[Mapping[CellKey, int]], service: str | None = None
) -> dict[District, Share]:
    """The share of every district (those without contacts too), in the districts' order."""
    shares = {district: Share() for district in District}
    for day_cells in cells:
        for cell, count in day_cells.items():
            if service is None or cell.service == service:
                shares[cell.district].add(cell, count)
    return shares


@dataclass(frozen=True)
class KvikFunnel:
    """KVIK sessions that ended in a contact or were abandoned, and the rates they give.

    Referred sessions are left out: they are not tallied yet.
    """

    self_service: int
    assisted: int
    abandoned: int

    @property
    def completed(self) -> int:
        """Sessions completed (with or without help)."""
        return self.self_service + self.assisted

    @property
    def completion_rate(self) -> float | None:
        """Completed / (completed + abandoned); None without sessions."""
        ended = self.completed + self.abandoned
        return self.completed / ended if ended else None

    @property
    def abandonment_rate(self) -> float | None:
        """Abandoned / (completed + abandoned); None without sessions."""
        ended = self.completed + self.abandoned
        return self.abandoned / ended if ended else None

    @property
    def help_rate(self) -> float | None:
        """Completed sessions that needed staff help / completed sessions; None without any."""
        return self.assisted / self.completed if self.completed else None


def kvik_funnel(
    cells: Iterable[Mapping[CellKey, int]],
    abandoned: Iterable[Mapping[tuple[District, str], int]],
    district: District | None = None,
    service: str | None = None,
) -> KvikFunnel:
    """The KVIK funnel over days of cells and abandonments, for a district and/or service."""
    share = share_of(cells, district, service)
    kvik = share.channels[Channel.KVIK]
    dropped = sum(
        count
        for day in abandoned
        for (cell_district, cell_service), count in day.items()
        if (district is None or cell_district is district)
        and (service is None or cell_service == service)
    )
    return KvikFunnel(kvik[ContactMode.SELF_SERVICE], kvik[ContactMode.ASSISTED], dropped)


# -- external intake ---------------------------------------------------------------------------

MAX_DAILY_COUNT = 1_000_000
"""More contacts than this for one district and service on one day is not a real figure."""


@dataclass(frozen=True)
class IntakeLine:
    """One line of an intake: a day's counts for one district and service (already typed)."""

    district: District
    service: str
    self_service: int
    assisted: int


def json_line_name(index: int) -> str:
    """How a line of a JSON intake is named in errors: its place in ``items``."""
    return f"body.items[{index}]"


def csv_line_name(index: int) -> str:
    """How a line of a CSV intake is named in errors: its line in the file (header = line 1)."""
    return f"line {index + 2}"


def intake_problems(
    day: dt.date,
    lines: Sequence[IntakeLine],
    today: dt.date,
    catalogue: Collection[str],
    line_name: Callable[[int], str] = json_line_name,
    day_name: str = "body.day",
) -> list[tuple[str, str]]:
    """What is wrong with an intake beyond each field's own type: ``(field, message)`` pairs.

    A day after today (Copenhagen), a service that is not in the registry's ``catalogue``, and
    a line naming the same district and service as an earlier line (which figure would be
    meant?). Counts over :data:`MAX_DAILY_COUNT` and negative counts are refused by the request
    model already.
    """
    problems: list[tuple[str, str]] = []
    if day > today:
        problems.append((day_name, "The day is in the future"))
    first_line: dict[tuple[District, str], int] = {}
    for index, line in enumerate(lines):
        if line.service not in catalogue:
            problems.append(
                (
                    f"{line_name(index)}.service",
                    f"Unknown service '{line.service}': not in the registry's catalogue",
                )
            )
        key = (line.district, line.service)
        if key in first_line:
            problems.append(
                (
                    line_name(index),
                    "Duplicate line: the same district and service as "
                    f"{line_name(first_line[key])}",
                )
            )
        else:
            first_line[key] = index
    return problems
