"""The mobile service's rules: visits, their lifecycle, conflicts (double booking and travel
time), opening hours, recurring series, utilisation and planning suggestions.

Pure functions and small models; no I/O. Opening hours, Danish public holidays, distances and
the digital target come from the contract, so every service judges them the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrulestr
from pydantic import BaseModel, ConfigDict

from services.contracts.geography import COPENHAGEN, haversine_km
from services.contracts.opening_hours import is_open_at, public_holiday
from services.contracts.payloads.registry import EntryUpserted
from services.contracts.reference import ContactMode, District, EntryKind, EntryStatus
from services.contracts.target import DIGITAL_TARGET_SHARE
from services.plumbing.problems import FieldProblem

MAX_WINDOW = dt.timedelta(hours=12)
"""The longest visit: a working day with travel; anything longer is a typo."""

MAX_OCCURRENCES = 200
"""A series longer than this is refused: plan a year of weekly visits, not a decade."""

# The longest straight line inside Copenhagen Municipality's box is about 20 km; candidates for
# a travel-time conflict lie at most this far plus the window and the buffer away in time.
_LONGEST_TRIP_KM = 25.0


class VisitStatus(StrEnum):
    """Where a visit is in its life."""

    PLANNED = "planned"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[VisitStatus, frozenset[VisitStatus]] = {
    VisitStatus.PLANNED: frozenset({VisitStatus.CONFIRMED, VisitStatus.CANCELLED}),
    VisitStatus.CONFIRMED: frozenset({VisitStatus.IN_PROGRESS, VisitStatus.CANCELLED}),
    VisitStatus.IN_PROGRESS: frozenset({VisitStatus.COMPLETED}),
    VisitStatus.COMPLETED: frozenset(),
    VisitStatus.CANCELLED: frozenset(),
}
"""The allowed moves; anything else is a 409. A visit under way is completed, not cancelled."""

EDITABLE = frozenset({VisitStatus.PLANNED, VisitStatus.CONFIRMED})
"""A plan can change until the visit starts."""

BOOKABLE = frozenset({VisitStatus.PLANNED, VisitStatus.CONFIRMED, VisitStatus.IN_PROGRESS})

RECORDABLE = frozenset({VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED})
"""Contacts are recorded while a visit runs or afterwards, never ahead of it."""


class CancelReason(StrEnum):
    """Why a visit was cancelled: codes, never free text (no personal data can slip in)."""

    STAFF_UNAVAILABLE = "staff_unavailable"
    PLACE_UNAVAILABLE = "place_unavailable"
    LOW_DEMAND = "low_demand"
    WEATHER = "weather"
    RESCHEDULED = "rescheduled"
    OTHER = "other"


class PlaceKind(StrEnum):
    """What kind of place a visit goes to."""

    ELDERLY_CENTRE = "elderly_centre"
    TRAIN_STATION = "train_station"
    SHOPPING_CENTRE = "shopping_centre"
    LIBRARY = "library"
    CULTURE_HOUSE = "culture_house"
    WORKPLACE = "workplace"
    MOBILE_STOP = "mobile_stop"
    CITIZEN_SERVICE = "citizen_service"
    OTHER = "other"


KIND_POINTS: dict[PlaceKind, tuple[int, str]] = {
    PlaceKind.ELDERLY_CENTRE: (20, "elderly centres are named for mobile citizen service"),
    PlaceKind.TRAIN_STATION: (20, "train stations are named for mobile citizen service"),
    PlaceKind.SHOPPING_CENTRE: (20, "shopping centres are named for mobile citizen service"),
    PlaceKind.LIBRARY: (10, "libraries are named as places citizens use daily"),
    PlaceKind.CULTURE_HOUSE: (10, "culture houses are named as places citizens use daily"),
    PlaceKind.WORKPLACE: (10, "workplaces are named as places citizens use daily"),
    PlaceKind.MOBILE_STOP: (10, "an established mobile citizen-service stop"),
}
"""Seed 001 §2.2: mobile citizen service goes "where citizens are in daily life (e.g. elderly
centres, train stations and shopping centres)"; the principles for general needs add the
library, the culture house and the workplace."""

_KIND_OF_ENTRY: dict[EntryKind, PlaceKind] = {
    EntryKind.LIBRARY: PlaceKind.LIBRARY,
    EntryKind.MOBILE_STOP: PlaceKind.MOBILE_STOP,
    EntryKind.CITIZEN_SERVICE_CENTRE: PlaceKind.CITIZEN_SERVICE,
    EntryKind.KVIK_POINT: PlaceKind.CITIZEN_SERVICE,
}
# When a site has several entries, the most telling kind wins (a KVIK point in a library is a
# library to the planner: that is where the citizens are).
_KIND_PRIORITY = (PlaceKind.MOBILE_STOP, PlaceKind.LIBRARY, PlaceKind.CITIZEN_SERVICE)


def site_kind(entries: Iterable[EntryUpserted]) -> PlaceKind:
    """The place kind of a registry site, from the kinds of the entries located there."""
    kinds = {_KIND_OF_ENTRY[e.kind] for e in entries if e.kind in _KIND_OF_ENTRY}
    for kind in _KIND_PRIORITY:
        if kind in kinds:
            return kind
    return PlaceKind.OTHER


def mobile_stop_of(entries: Iterable[EntryUpserted]) -> str | None:
    """The open mobile-stop entry among a site's ``entries`` (the lowest id when there are
    several), or None: the entry a mobile contact at the site counts at (usage per entry)."""
    stops = sorted(
        e.entry_id
        for e in entries
        if e.kind is EntryKind.MOBILE_STOP and e.status is EntryStatus.OPEN
    )
    return stops[0] if stops else None


def adhoc_place_id(name: str, district: District) -> str:
    """A stable id for an ad-hoc place, so visits to "Valby Station" meet in its calendar."""
    digest = hashlib.sha256(f"{district.value}\n{name.casefold()}".encode()).hexdigest()
    return f"place-{digest[:12]}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Place(_Model):
    """Where a visit happens: a registry site, or an ad-hoc place (``site_id`` None)."""

    place_id: str
    site_id: str | None
    name: str
    district: District
    latitude: float
    longitude: float
    kind: PlaceKind


class OverrideRecord(_Model):
    """A planner's explicit decision to hold a visit outside the place's opening hours."""

    by: str
    at: dt.datetime


class HistoryRecord(_Model):
    """One change of a visit: who (pseudonymous subject), when, what."""

    at: dt.datetime
    by: str
    action: str
    status: VisitStatus
    reason: CancelReason | None = None
    request: str | None = None
    """A digest of the caller's Idempotency-Key, so a retried step is recognised."""


OpeningCheck = Literal["within", "outside", "unknown"]


class Visit(_Model):
    """A mobile citizen-service visit, as stored. Times are aware datetimes (UTC)."""

    visit_id: str
    version: int
    place: Place
    starts_at: dt.datetime
    ends_at: dt.datetime
    staff: tuple[str, ...]
    kit: tuple[str, ...]
    services: tuple[str, ...]
    slots: int
    drop_ins: bool
    status: VisitStatus = VisitStatus.PLANNED
    cancel_reason: CancelReason | None = None
    opening_hours: OpeningCheck = "unknown"
    override: OverrideRecord | None = None
    series_id: str | None = None
    occurrence_date: dt.date | None = None
    """For a series occurrence: the local date the rule gave it (its identity in the series)."""
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    history: tuple[HistoryRecord, ...] = ()

    @property
    def blocks(self) -> bool:
        """Whether the visit holds its staff and kit (a cancelled one frees them)."""
        return self.status is not VisitStatus.CANCELLED

    def resources(self) -> set[tuple[str, str]]:
        """(``staff`` or ``kit``, id) of everything the visit holds."""
        return {("staff", s) for s in self.staff} | {("kit", k) for k in self.kit}

    def plan_of(self) -> dict[str, object]:
        """The fields a planner chooses: two saves with equal plans are the same request."""
        return self.model_dump(
            mode="json",
            include={"place", "starts_at", "ends_at", "staff", "kit", "services", "slots"}
            | {"drop_ins"},
        )


# --- windows -------------------------------------------------------------------------------


def as_copenhagen(when: dt.datetime) -> dt.datetime:
    """A time without an offset is what a planner means on the clock in Copenhagen."""
    return when if when.tzinfo is not None else when.replace(tzinfo=COPENHAGEN)


def _window_shape_problems(
    starts_at: dt.datetime, ends_at: dt.datetime, prefix: str
) -> list[FieldProblem]:
    """A window that is inverted or longer than 12 hours."""
    if ends_at <= starts_at:
        return [FieldProblem(field=f"{prefix}.ends_at", message="must be later than starts_at")]
    if ends_at - starts_at > MAX_WINDOW:
        return [FieldProblem(field=f"{prefix}.ends_at", message="a visit lasts at most 12 hours")]
    return []


def window_problems(
    starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime, prefix: str = "body"
) -> list[FieldProblem]:
    """What is wrong with a visit's time window: inverted, in the past, longer than 12 hours."""
    problems = _window_shape_problems(starts_at, ends_at, prefix)
    if starts_at < now:
        problems.append(FieldProblem(field=f"{prefix}.starts_at", message="is in the past"))
    return problems


MAX_HELD_AGE = dt.timedelta(days=400)
"""How far back a visit that already took place may be logged (a year and a little more)."""


def held_window_problems(
    starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime, prefix: str = "body"
) -> list[FieldProblem]:
    """What is wrong with the window of a visit logged after it took place: inverted, longer
    than 12 hours, not over yet, or older than :data:`MAX_HELD_AGE`."""
    problems = _window_shape_problems(starts_at, ends_at, prefix)
    if ends_at > now:
        problems.append(
            FieldProblem(
                field=f"{prefix}.ends_at",
                message="is not over yet; plan the visit with POST /visits instead",
            )
        )
    if starts_at < now - MAX_HELD_AGE:
        problems.append(
            FieldProblem(
                field=f"{prefix}.starts_at",
                message=f"is more than {MAX_HELD_AGE.days} days ago",
            )
        )
    return problems


# --- opening hours -------------------------------------------------------------------------


def opening_check(
    entries: Sequence[EntryUpserted], starts_at: dt.datetime, ends_at: dt.datetime
) -> OpeningCheck:
    """Whether the whole window lies within the opening hours of the site's entries.

    The site is open at a minute when any of its open entries is (co-located entries share the
    building). Opening hours have minute resolution, so checking every minute is exact; a
    window is at most 12 hours (720 checks). Without any weekly hours the answer is unknown.
    """
    live = [e for e in entries if e.status is EntryStatus.OPEN]
    if not any(e.opening_hours.weekly or e.opening_hours.exceptions for e in entries):
        return "unknown"
    minute = dt.timedelta(minutes=1)
    at = starts_at.replace(second=0, microsecond=0)
    while at < ends_at:
        if not any(
            is_open_at(e.opening_hours, at, closes_on_holidays=bool(e.staff_help)) for e in live
        ):
            return "outside"
        at += minute
    return "within"


# --- conflicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TravelRule:
    """How fast staff move between places, and the buffer on top of every trip."""

    speed_kmh: float
    buffer: dt.timedelta

    def travel(self, a: Place, b: Place) -> dt.timedelta:
        """Time needed from ``a`` to ``b``: none at the same place, else distance/speed+buffer."""
        if a.place_id == b.place_id:
            return dt.timedelta(0)
        km = haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)
        return dt.timedelta(hours=km / self.speed_kmh) + self.buffer

    @property
    def search_margin(self) -> dt.timedelta:
        """How far from a window another visit can start and still collide with it."""
        return MAX_WINDOW + dt.timedelta(hours=_LONGEST_TRIP_KM / self.speed_kmh) + self.buffer


class ConflictKind(StrEnum):
    """Why two visits cannot both happen."""

    OVERLAP = "overlap"
    TRAVEL_TIME = "travel_time"


@dataclass(frozen=True)
class Conflict:
    """A planned visit collides with ``visit_id`` over ``resource``."""

    visit_id: str
    resource: str
    kind: ConflictKind
    needed_minutes: int = 0
    available_minutes: int = 0
    planned_visit_id: str = ""
    """Which of the visits being saved collides (a series saves many)."""

    def describe(self) -> str:
        """One sentence for the problem's detail."""
        if self.kind is ConflictKind.OVERLAP:
            return f"{self.resource} is already on visit {self.visit_id} at that time."
        return (
            f"{self.resource} cannot travel between this visit and visit {self.visit_id}: "
            f"{self.needed_minutes} min needed, {self.available_minutes} min between them."
        )


def collision(new: Visit, other: Visit, rule: TravelRule) -> Conflict | None:
    """How ``new`` collides with ``other`` over a resource both hold, or None."""
    shared = sorted(new.resources() & other.resources())
    if not shared or not (new.blocks and other.blocks):
        return None
    resource = f"{shared[0][0]} {shared[0][1]}"
    if new.starts_at < other.ends_at and other.starts_at < new.ends_at:
        return Conflict(
            other.visit_id, resource, ConflictKind.OVERLAP, planned_visit_id=new.visit_id
        )
    if new.starts_at >= other.ends_at:
        gap, needed = new.starts_at - other.ends_at, rule.travel(other.place, new.place)
    else:
        gap, needed = other.starts_at - new.ends_at, rule.travel(new.place, other.place)
    if gap < needed:
        return Conflict(
            other.visit_id,
            resource,
            ConflictKind.TRAVEL_TIME,
            needed_minutes=_ceil_minutes(needed),
            available_minutes=int(gap.total_seconds() // 60),
            planned_visit_id=new.visit_id,
        )
    return None


def _ceil_minutes(span: dt.timedelta) -> int:
    return int(-(-span.total_seconds() // 60))


def first_conflict(
    planned: Sequence[Visit], existing: Iterable[Visit], rule: TravelRule
) -> Conflict | None:
    """The first collision of any visit in ``planned`` with ``existing`` or with another
    visit in ``planned`` (a series must not collide with itself). Overlaps are reported before
    travel-time conflicts, the earliest colliding visit first.

    Checking every pair (not only neighbours) is equivalent: distances obey the triangle
    inequality and every trip adds a buffer, so if A->B->C is possible, so is A->C.
    """
    others = sorted(existing, key=lambda v: (v.starts_at, v.visit_id))
    found: list[Conflict] = []
    for index, new in enumerate(planned):
        for other in itertools.chain(others, planned[:index]):
            hit = collision(new, other, rule)
            if hit is not None:
                found.append(hit)
    if not found:
        return None
    return min(found, key=lambda c: c.kind is not ConflictKind.OVERLAP)


# --- lifecycle -----------------------------------------------------------------------------


def can_transition(current: VisitStatus, target: VisitStatus) -> bool:
    """Whether a visit may move from ``current`` to ``target``."""
    return target in TRANSITIONS[current]


# --- recurring series ----------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One visit of a series: its rule date, and its window (moved if an exception says so)."""

    date: dt.date
    starts_at: dt.datetime
    ends_at: dt.datetime
    moved: bool = False


@dataclass(frozen=True)
class Skipped:
    """A date the rule gives that has no visit, and why."""

    date: dt.date
    reason: str


@dataclass
class Expansion:
    """A rule's occurrences and the dates it skipped."""

    occurrences: list[Occurrence] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class RuleError(ValueError):
    """The recurrence rule cannot be used; the message says why."""


_FREQUENCIES = {DAILY, WEEKLY, MONTHLY, YEARLY}


def local_window(day: dt.date, start: dt.time, duration: dt.timedelta) -> tuple[dt.datetime, ...]:
    """Start and end of a visit on ``day`` at wall-clock ``start`` in Copenhagen.

    The wall clock is what the planner means: 10:00-13:00 stays 10:00-13:00 local on both
    sides of a DST change (the UTC instants move by an hour).
    """
    naive = dt.datetime.combine(day, start)
    return (naive.replace(tzinfo=COPENHAGEN), (naive + duration).replace(tzinfo=COPENHAGEN))


def expand_rule(
    rule: str,
    first_start: dt.datetime,
    duration: dt.timedelta,
    cancelled: Iterable[dt.date] = (),
    moved: dict[dt.date, dt.datetime] | None = None,
) -> Expansion:
    """Expand an RFC 5545 RRULE from ``first_start`` (naive Copenhagen wall-clock time).

    Danish public holidays are skipped, ``cancelled`` dates are skipped, ``moved`` dates get
    their new (naive, local) start with the same duration. Raises :class:`RuleError` for a rule
    that does not parse, has no end (COUNT or UNTIL), repeats more often than daily or gives
    more than ``MAX_OCCURRENCES`` dates, and for exceptions on dates the rule does not give.
    """
    if first_start.tzinfo is not None:
        first_start = first_start.astimezone(COPENHAGEN).replace(tzinfo=None)
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    parts = {p.split("=", 1)[0].upper() for p in text.split(";") if p}
    if not parts & {"COUNT", "UNTIL"}:
        raise RuleError("the rule needs COUNT or UNTIL: a series must end")
    try:
        parsed = rrulestr(text, dtstart=first_start)
    except (ValueError, TypeError) as error:
        raise RuleError(f"not an RFC 5545 RRULE: {error}") from None
    if getattr(parsed, "_freq", None) not in _FREQUENCIES:
        raise RuleError("repeat at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY)")
    dates = [d.date() for d in itertools.islice(iter(parsed), MAX_OCCURRENCES + 1)]
    if len(dates) > MAX_OCCURRENCES:
        raise RuleError(f"the rule gives more than {MAX_OCCURRENCES} visits")
    moved = dict(moved or {})
    cancelled = set(cancelled)
    for day in sorted(cancelled | set(moved)):
        if day not in dates:
            raise RuleError(f"{day.isoformat()} is not a date of the rule")
    result = Expansion()
    for day in dates:
        holiday = public_holiday(day)
        if day in cancelled:
            result.skipped.append(Skipped(day, "cancelled"))
        elif day in moved:
            new_start = as_copenhagen(moved[day]).astimezone(COPENHAGEN).replace(tzinfo=None)
            starts, ends = local_window(new_start.date(), new_start.time(), duration)
            result.occurrences.append(Occurrence(day, starts, ends, moved=True))
        elif holiday is not None:
            result.skipped.append(Skipped(day, f"public holiday: {holiday}"))
        else:
            starts, ends = local_window(day, first_start.time(), duration)
            result.occurrences.append(Occurrence(day, starts, ends))
    return result


# --- utilisation ---------------------------------------------------------------------------


class ContactRecord(_Model):
    """A contact as stored with its visit (what the event said, plus the booking if any)."""

    contact_id: str
    service: str
    mode: ContactMode
    onboarded_to_digital: bool
    at: dt.datetime
    booking_ref: str | None = None


def staffed_hours(visit: Visit) -> float:
    """Staff-hours of a visit: actual times once it ran, planned times before."""
    start = visit.started_at or visit.starts_at
    end = visit.ended_at or visit.ends_at
    return max(0.0, (end - start).total_seconds() / 3600) * len(visit.staff)


def utilisation(
    visits: Sequence[tuple[Visit, Sequence[ContactRecord], int]],
) -> dict[str, object]:
    """Contacts per staffed hour, bookings used and drop-ins over ``(visit, contacts,
    bookings)`` triples; cancelled visits count for nothing."""
    held = [(v, c, b) for v, c, b in visits if v.status is not VisitStatus.CANCELLED]
    contacts = [c for _, cs, _ in held for c in cs]
    hours = sum(staffed_hours(v) for v, _, _ in held)
    slots = sum(v.slots for v, _, _ in held)
    bookings = sum(b for _, _, b in held)
    self_service = sum(c.mode is ContactMode.SELF_SERVICE for c in contacts)
    return {
        "visits": len(held),
        "contacts": len(contacts),
        "self_service": self_service,
        "assisted": len(contacts) - self_service,
        "onboarded_to_digital": sum(c.onboarded_to_digital for c in contacts),
        "drop_ins": sum(c.booking_ref is None for c in contacts),
        "booked_contacts": sum(c.booking_ref is not None for c in contacts),
        "staffed_hours": round(hours, 2),
        "contacts_per_staffed_hour": round(len(contacts) / hours, 2) if hours else None,
        "slots": slots,
        "bookings": bookings,
        "bookings_used": round(bookings / slots, 3) if slots else None,
    }


# --- suggestions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """What the metrics service last said about a district's digital share."""

    share: float | None
    window_days: int
    last_day: dt.date


@dataclass(frozen=True)
class Reason:
    """One factor of a suggestion's score."""

    factor: str
    points: float
    detail: str


@dataclass(frozen=True)
class Suggestion:
    """A district or place to visit next, with the reasons that produced its score."""

    target: str
    district: District
    score: float
    reasons: tuple[Reason, ...]
    name: str | None = None


def share_reason(share: Share | None) -> Reason:
    """Points for a low digital share: one per percentage point below the 80 % target."""
    if share is None or share.share is None:
        return Reason("digital_share", 10.0, "no digital share known for the district yet")
    gap = max(0.0, DIGITAL_TARGET_SHARE - share.share)
    return Reason(
        "digital_share",
        round(100 * gap, 1),
        f"digital share {round(100 * share.share)} % over the {share.window_days} days to "
        f"{share.last_day.isoformat()}, target {round(100 * DIGITAL_TARGET_SHARE)} %",
    )


def recency_reason(last: dt.datetime | None, now: dt.datetime) -> Reason:
    """Points for time since the last visit: half a point a day, at most 30 (two months)."""
    if last is None:
        return Reason("last_visit", 30.0, "never visited")
    if last > now:
        return Reason("last_visit", 0.0, f"already planned for {last.date().isoformat()}")
    days = (now - last).days
    return Reason("last_visit", min(30.0, days / 2), f"last visited {days} days ago")


def kind_reason(kind: PlaceKind) -> Reason | None:
    """Points for the kinds of place the seeds name, or None."""
    if kind not in KIND_POINTS:
        return None
    points, detail = KIND_POINTS[kind]
    return Reason("place_kind", float(points), f"{detail} (seed 001, section 2.2)")


def suggest_places(
    places: Iterable[Place],
    shares: dict[District, Share],
    last_visits: dict[str, dt.datetime],
    now: dt.datetime,
) -> list[Suggestion]:
    """Every place scored by its district's share, time since its last visit and its kind,
    best first (ties by name)."""
    found = []
    for place in places:
        reasons = [
            share_reason(shares.get(place.district)),
            recency_reason(last_visits.get(place.place_id), now),
        ]
        kind = kind_reason(place.kind)
        if kind is not None:
            reasons.append(kind)
        found.append(
            Suggestion(
                target=place.place_id,
                district=place.district,
                score=round(sum(r.points for r in reasons), 1),
                reasons=tuple(reasons),
                name=place.name,
            )
        )
    return sorted(found, key=lambda s: (-s.score, s.name or "", s.target))


def suggest_districts(
    shares: dict[District, Share], last_visits: dict[District, dt.datetime], now: dt.datetime
) -> list[Suggestion]:
    """Every district scored by its share and the time since any visit there, best first."""
    found = []
    for district in District:
        reasons = (
            share_reason(shares.get(district)),
            recency_reason(last_visits.get(district), now),
        )
        found.append(
            Suggestion(
                target=district.value,
                district=district,
                score=round(sum(r.points for r in reasons), 1),
                reasons=reasons,
                name=district.display_name,
            )
        )
    return sorted(found, key=lambda s: (-s.score, s.target))


class Series(_Model):
    """A recurring visit: the rule, its exceptions and the visit of each rule date."""

    series_id: str
    version: int
    rrule: str
    first_starts_at: dt.datetime
    """Naive Copenhagen wall-clock time of the first start."""
    duration_minutes: int
    cancelled: tuple[dt.date, ...] = ()
    moved: dict[dt.date, dt.datetime] = {}
    occurrences: dict[dt.date, str] = {}
    """Rule date -> visit id."""
    skipped: tuple[tuple[dt.date, str], ...] = ()
    revisions: tuple[dict[str, object], ...] = ()
    """Edits of "this and following": from which date, by whom, what changed."""


def local_iso(when: dt.datetime) -> str:
    """``when`` as ISO 8601 in Copenhagen local time, with its offset."""
    return when.astimezone(COPENHAGEN).isoformat()


# --- refusals ------------------------------------------------------------------------------
# What a use case answers when it will not do what was asked; ``api.py`` maps each kind to its
# problem+json (the use cases know nothing of HTTP).


class Refusal(Exception):
    """A use case refused; nothing was stored and no event staged."""


class NotFound(Refusal):
    """What was asked for does not exist (``what``: e.g. ``visit v-1``)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Invalid(Refusal):
    """The request is well-formed but breaks a rule: one entry per field that does."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__(", ".join(p.field for p in problems))
        self.problems = list(problems)


class StateConflict(Refusal):
    """The request does not fit the current state (a taken id, a full visit, a visit that has
    started ...): ``code`` names the kind, ``title`` and ``detail`` say it to a person."""

    def __init__(self, code: str, title: str, detail: str) -> None:
        super().__init__(code)
        self.code = code
        self.title = title
        self.detail = detail


class OutsideOpeningHours(Refusal):
    """Windows outside the place's opening hours, planned without an explicit override."""

    def __init__(self, place_name: str, starts: Sequence[dt.datetime]) -> None:
        super().__init__(place_name)
        self.place_name = place_name
        self.starts = list(starts)

    @property
    def days(self) -> str:
        """The first ten refused starts, local time to the minute, for the person planning."""
        return ", ".join(sorted({local_iso(s)[:16] for s in self.starts})[:10])
