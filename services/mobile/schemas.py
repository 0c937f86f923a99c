"""Request bodies, response models and views of the mobile service's HTTP API.

They reuse the contract's value types (``Id``, ``Code``, ``StaffIds``, ``District`` ...), so what
the API accepts is exactly what the events can carry. Times without an offset are Copenhagen
wall-clock time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.contracts.payloads.base import (
    ClockTime,
    Id,
    Name,
    NonEmptyCodes,
    StaffIds,
    unique,
)
from services.contracts.reference import ContactMode, District
from services.mobile.domain import (
    CancelReason,
    ContactRecord,
    OpeningCheck,
    PlaceKind,
    Series,
    Suggestion,
    Visit,
    VisitStatus,
    local_iso,
)
from services.plumbing.edge_models import EdgeModel

KitIds = Annotated[tuple[Id, ...], Field(max_length=10), AfterValidator(unique)]
"""The mobile kit (laptop, ID-card printer ...) by inventory id, without duplicates."""

Staff = Annotated[StaffIds, Field(max_length=20)]
Services = Annotated[NonEmptyCodes, Field(max_length=50)]
Slots = Annotated[int, Field(ge=0, le=200)]


class _Body(EdgeModel):
    """Closed like the contract, and refusing anything that looks like a CPR number (see
    ``EdgeModel``: 422 naming the field): staff ids and references end up in events, which must
    never carry personal data."""

    model_config = ConfigDict(
        extra="forbid", hide_input_in_errors=True, frozen=True, use_attribute_docstrings=True
    )


class AdHocPlaceIn(_Body):
    """A place that is not in the registry: a station forecourt, a shopping-centre aisle."""

    place_id: Id | None = None
    """Chosen by the planner, or derived from name and district, so repeat visits meet."""
    name: Name
    district: District
    latitude: float = Field(ge=-90, le=90, description="WGS 84 degrees")
    longitude: float = Field(ge=-180, le=180, description="WGS 84 degrees")
    kind: PlaceKind = PlaceKind.OTHER


class PlanFields(_Body):
    """What a visit and a series template share."""

    site_id: Id | None = None
    """A registry site; give this or ``place``."""
    place: AdHocPlaceIn | None = None
    place_kind: PlaceKind | None = None
    """What kind of place a registry site is to the planner; derived from its entries if
    absent."""
    staff: Staff = ()
    kit: KitIds = ()
    services: Services
    slots: Slots = 0
    """Bookable appointment slots, the window split evenly between them."""
    drop_ins: bool = True
    override_opening_hours: bool = False
    """Plan outside the place's opening hours anyway; the override is recorded."""

    @model_validator(mode="after")
    def _one_place(self) -> Self:
        if (self.site_id is None) == (self.place is None):
            raise ValueError("give exactly one of site_id and place")
        return self


class VisitIn(PlanFields):
    """A one-off visit."""

    visit_id: Id | None = None
    """Chosen by the client to make a retried create safe, or generated."""
    starts_at: dt.datetime
    ends_at: dt.datetime


class VisitEdit(_Body):
    """Changes to a planned or confirmed visit; absent fields stay as they are."""

    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    staff: Staff | None = None
    kit: KitIds | None = None
    services: Services | None = None
    slots: Slots | None = None
    drop_ins: bool | None = None
    override_opening_hours: bool = False


class CancelIn(_Body):
    """Why a visit is cancelled (a code, never free text)."""

    reason: CancelReason


class CompleteIn(_Body):
    """Actual times of a visit that took place; default: when it was started, and now."""

    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None


class ContactIn(_Body):
    """One contact at a visit: what the matter was and how it was handled; no citizen data."""

    contact_id: Id | None = None
    """Chosen by the client, so a retry records the contact once."""
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    mode: ContactMode
    onboarded_to_digital: bool = False
    booking_ref: Id | None = None
    """The booking the citizen came with; none for a drop-in."""
    at: dt.datetime | None = None


class BookingIn(_Body):
    """A citizen's appointment in a visit's slot, booked by staff; only a reference is kept."""

    booking_ref: Id
    slot: Annotated[int, Field(ge=0, le=199)] | None = None
    """A particular slot, or the first free one."""


class SeriesException(_Body):
    """One date of the rule that is cancelled or moved."""

    date: dt.date
    cancelled: bool = False
    moved_to: dt.datetime | None = None
    """The new start (no offset: Copenhagen time); the visit keeps its duration."""

    @model_validator(mode="after")
    def _cancelled_or_moved(self) -> Self:
        if self.cancelled == (self.moved_to is not None):
            raise ValueError("an exception either cancels its date or moves it")
        return self


class SeriesIn(PlanFields):
    """Recurring visits: an RFC 5545 RRULE from a first start, with exceptions."""

    series_id: Id | None = None
    first_starts_at: dt.datetime
    """The first visit's start; its Copenhagen wall-clock time is kept for every visit."""
    duration_minutes: Annotated[int, Field(ge=1, le=720)]
    rrule: Annotated[str, Field(min_length=5, max_length=300, pattern=r"^[A-Za-z0-9=;,:+-]+$")]
    """E.g. ``FREQ=WEEKLY;BYDAY=TU;COUNT=10``; COUNT or UNTIL is required."""
    exceptions: Annotated[tuple[SeriesException, ...], Field(max_length=200)] = ()

    @model_validator(mode="after")
    def _one_exception_per_date(self) -> Self:
        unique(tuple(e.date for e in self.exceptions))
        return self


class OccurrenceEdit(_Body):
    """Changes to one occurrence ("this") or to it and all following ("following")."""

    start_time: ClockTime | None = None
    """New local start time on the occurrence's own date."""
    moved_to: dt.datetime | None = None
    """Only with scope "this": a new date and time for this occurrence."""
    duration_minutes: Annotated[int, Field(ge=1, le=720)] | None = None
    staff: Staff | None = None
    kit: KitIds | None = None
    services: Services | None = None
    slots: Slots | None = None
    drop_ins: bool | None = None
    override_opening_hours: bool = False


# --- responses -----------------------------------------------------------------------------
# What the routes answer. Times are ISO 8601 strings in Copenhagen local time with their offset
# (history and override times as stored, in UTC). The view functions build the JSON; the
# routes declare these models with ``response_model_exclude_unset`` so that a key a view leaves
# out (``bookings``, ``visit_id``) stays out. Closed (``extra="forbid"``): a view that grows a
# key its model does not describe fails loudly instead of losing it.


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceOut(_Out):
    """Where a visit happens: a registry site, or an ad-hoc place (``site_id`` null)."""

    place_id: str
    site_id: str | None
    name: str
    district: District
    latitude: float
    longitude: float
    kind: PlaceKind


class OverrideOut(_Out):
    """A planner's explicit decision to hold a visit outside the opening hours."""

    by: str
    """The planner's pseudonymous id."""
    at: str


class PublicOverrideOut(_Out):
    """An opening-hours override, without who made it."""

    at: str


class HistoryOut(_Out):
    """One change of a visit."""

    at: str
    by: str
    """The pseudonymous id of who made the change."""
    action: str
    status: VisitStatus
    reason: CancelReason | None
    request: str | None
    """A digest of the caller's Idempotency-Key, so a retried step is recognised."""


class PublicHistoryOut(_Out):
    """One change of a visit, without who made it."""

    at: str
    action: str
    status: VisitStatus
    reason: CancelReason | None
    request: str | None


class VisitOut(_Out):
    """A visit, as the planners see it."""

    visit_id: str
    version: int
    place: PlaceOut
    starts_at: str
    ends_at: str
    staff: list[str]
    kit: list[str]
    services: list[str]
    slots: int
    drop_ins: bool
    status: VisitStatus
    cancel_reason: CancelReason | None
    opening_hours: OpeningCheck
    override: OverrideOut | None
    series_id: str | None
    occurrence_date: str | None
    """For a series occurrence: the local date the rule gave it."""
    started_at: str | None
    ended_at: str | None
    history: list[HistoryOut]
    bookings: int | None = None
    """How many slots are booked (only on the routes that say so)."""


class PublicVisitOut(_Out):
    """A visit as the public routes show it: no staff or actor ids."""

    visit_id: str
    version: int
    place: PlaceOut
    starts_at: str
    ends_at: str
    kit: list[str]
    services: list[str]
    slots: int
    drop_ins: bool
    status: VisitStatus
    cancel_reason: CancelReason | None
    opening_hours: OpeningCheck
    override: PublicOverrideOut | None
    series_id: str | None
    occurrence_date: str | None
    started_at: str | None
    ended_at: str | None
    history: list[PublicHistoryOut]
    bookings: int | None = None
    """How many slots are booked (on ``GET /visits/{visit_id}``)."""


class SkippedOut(_Out):
    """A rule date with no visit, and why (e.g. a public holiday)."""

    date: str
    reason: str


class RevisionOut(_Out):
    """An edit of a series: from which date, which scope, by whom, what changed."""

    from_date: str
    scope: str
    by: str
    at: str
    changed: list[str]


class PublicRevisionOut(_Out):
    """An edit of a series, without who made it."""

    from_date: str
    scope: str
    at: str
    changed: list[str]


class SeriesOut(_Out):
    """A recurring series with its rule, exceptions, revisions, skipped dates and visits."""

    series_id: str
    version: int
    rrule: str
    first_starts_at: str
    """Copenhagen wall-clock time of the first start, without an offset."""
    duration_minutes: int
    cancelled: list[str]
    moved: dict[str, str]
    """Rule date -> new start (Copenhagen wall-clock time)."""
    revisions: list[RevisionOut]
    skipped: list[SkippedOut]
    visits: list[VisitOut]


class PublicSeriesOut(_Out):
    """A series as the public route shows it: no staff or actor ids."""

    series_id: str
    version: int
    rrule: str
    first_starts_at: str
    duration_minutes: int
    cancelled: list[str]
    moved: dict[str, str]
    revisions: list[PublicRevisionOut]
    skipped: list[SkippedOut]
    visits: list[PublicVisitOut]


class BookingOut(_Out):
    """A booked slot and its local window."""

    booking_ref: str
    slot: int
    starts_at: str
    ends_at: str


class ContactOut(_Out):
    """A contact recorded at a visit."""

    contact_id: str
    service: str
    mode: ContactMode
    onboarded_to_digital: bool
    at: str
    booking_ref: str | None
    visit_id: str | None = None
    """On the answer of ``POST /visits/{visit_id}/contacts``."""


class _Utilisation(_Out):
    visits: int
    """Visits held (cancelled ones count for nothing)."""
    contacts: int
    self_service: int
    assisted: int
    onboarded_to_digital: int
    drop_ins: int
    booked_contacts: int
    # ``int`` first: with no visit held the sum is the integer 0, and it is answered as 0.
    staffed_hours: int | float
    contacts_per_staffed_hour: float | None
    slots: int
    bookings: int
    bookings_used: float | None


class _VisitId(_Out):
    visit_id: str


class _PlaceId(_Out):
    place_id: str


# Pydantic orders fields base-last-first: the id comes first, as the routes answer it.
class VisitUtilisationOut(_Utilisation, _VisitId):
    """Contacts per staffed hour, bookings used and drop-ins of one visit."""


class PlaceUtilisationOut(_Utilisation, _PlaceId):
    """Contacts per staffed hour, bookings used and drop-ins over the visits to a place."""


class CalendarOut(_Out):
    """Visits of a staff member, place or district, by start (public: no staff or actor ids)."""

    kind: str
    target: str
    timezone: str
    visits: list[PublicVisitOut]


class ReasonOut(_Out):
    """One factor of a suggestion's score."""

    factor: str
    points: float
    detail: str


class SuggestionOut(_Out):
    """A district or place to visit next."""

    target: str
    name: str | None
    district: District
    score: float
    reasons: list[ReasonOut]


class SuggestionsOut(_Out):
    """Districts and places to visit next, best first."""

    computed_at: str
    districts: list[SuggestionOut]
    places: list[SuggestionOut]


# --- views: domain objects as the routes answer them ---------------------------------------


def visit_view(visit: Visit, bookings: int | None = None) -> dict[str, Any]:
    """A visit as the API shows it: times in Copenhagen local time with their offset."""
    body = visit.model_dump(mode="json")
    for name in ("starts_at", "ends_at", "started_at", "ended_at"):
        value = getattr(visit, name)
        body[name] = local_iso(value) if value is not None else None
    if bookings is not None:
        body["bookings"] = bookings
    return body


def public_visit_view(visit: Visit, bookings: int | None = None) -> dict[str, Any]:
    """A visit as the public routes show it: :func:`visit_view` without any staff or actor id.

    Where and when the mobile service comes is public; who works there, who planned a visit
    and who overrode the opening hours is not, even as pseudonymous ids (issue 19, item 2).
    """
    body = visit_view(visit, bookings)
    body.pop("staff", None)
    body["history"] = [{k: v for k, v in h.items() if k != "by"} for h in body["history"]]
    if body.get("override") is not None:
        body["override"] = {k: v for k, v in body["override"].items() if k != "by"}
    return body


def series_view(series: Series, visits: Sequence[Visit]) -> dict[str, Any]:
    """A series as the API shows it: rule, skipped dates, revisions and visits."""
    body = series.model_dump(mode="json", exclude={"occurrences", "skipped"})
    body["skipped"] = [{"date": d.isoformat(), "reason": r} for d, r in series.skipped]
    body["visits"] = [visit_view(v) for v in sorted(visits, key=lambda v: v.starts_at)]
    return body


def public_series_view(series: Series, visits: Sequence[Visit]) -> dict[str, Any]:
    """A series as the public route shows it: no staff or actor id in it or its visits."""
    body = series_view(series, visits)
    body["revisions"] = [{k: v for k, v in r.items() if k != "by"} for r in body["revisions"]]
    body["visits"] = [public_visit_view(v) for v in sorted(visits, key=lambda v: v.starts_at)]
    return body


def contact_view(contact: ContactRecord, visit_id: str | None = None) -> dict[str, Any]:
    """A contact with its time in Copenhagen local time (and its visit, when asked)."""
    body: dict[str, Any] = {**contact.model_dump(mode="json"), "at": local_iso(contact.at)}
    if visit_id is not None:
        body["visit_id"] = visit_id
    return body


def suggestion_view(s: Suggestion) -> dict[str, Any]:
    """A suggestion with its reasons."""
    return {
        "target": s.target,
        "name": s.name,
        "district": s.district.value,
        "score": s.score,
        "reasons": [
            {"factor": r.factor, "points": r.points, "detail": r.detail} for r in s.reasons
        ],
    }
