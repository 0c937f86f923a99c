"""Request bodies of the mobile service's HTTP API.

They reuse the contract's value types (``Id``, ``Code``, ``StaffIds``, ``District`` ...), so what
the API accepts is exactly what the events can carry. Times without an offset are Copenhagen
wall-clock time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from services.contracts.payloads.base import (
    ClockTime,
    Id,
    Name,
    NonEmptyCodes,
    StaffIds,
    unique,
)
from services.contracts.reference import ContactMode, District
from services.mobile.domain import CancelReason, PlaceKind
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
