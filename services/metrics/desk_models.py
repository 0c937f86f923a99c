"""The desk's HTTP bodies and answers: a finished ticket as a queue system sends it (live feed,
day file, and each row of the CSV day file), what the intake answers, and the waiting and
service times per centre. Times are ISO 8601 with their offset, never numbers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from services.contracts import District, TicketOutcome
from services.contracts.payloads.base import Code, Id, StaffId
from services.contracts.payloads.desk import MAX_TICKETS_PER_DAY
from services.metrics import domain
from services.plumbing.edge_models import EdgeModel

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_moment(value: object) -> object:
    # pydantic takes a number, or a string of digits, as Unix time: a ticket's time is written
    # as ISO 8601 with its offset, nothing else.
    if not isinstance(value, str) or not _ISO_MOMENT.match(value):
        raise ValueError("Expected an ISO 8601 time with offset, e.g. 2024-01-15T09:14:00+01:00")
    return value


_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _plausible(moment: dt.datetime) -> dt.datetime:
    # Far outside the queue systems' lifetime a time is an error, and year 1 or 9999 would
    # overflow when moved to the Copenhagen clock.
    if not _EARLIEST <= moment < _LATEST:
        raise ValueError("Expected a time between the years 2000 and 2100")
    return moment


def _plausible_day(day: dt.date) -> dt.date:
    if not _EARLIEST.date() <= day < _LATEST.date():
        raise ValueError("Expected a day between the years 2000 and 2100")
    return day


def _iso_day(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ValueError("Expected a calendar day, YYYY-MM-DD")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_moment), AfterValidator(_plausible)]
"""A time with its UTC offset, as ISO 8601 text (never a number)."""
IsoDay = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_plausible_day)]
"""A calendar day as ``YYYY-MM-DD`` (never a number)."""


class TicketFields(EdgeModel):
    """The fields of a finished ticket as a queue system sends them (also each row of the CSV
    day file, so its cells pass the same CPR guard)."""

    service: Code = Field(description="The catalogue service the ticket was issued for.")
    desk_id: Id | None = Field(
        default=None,
        description="The pseudonymous desk that called the ticket; needed when served.",
    )
    staff_id: StaffId | None = Field(
        default=None, description="The pseudonymous staff member (staff-...), if known."
    )
    issued_at: Moment = Field(description="When the ticket was taken (ISO 8601 with offset).")
    called_at: Moment | None = Field(
        default=None, description="When it was called to a desk; null if never called."
    )
    served_at: Moment | None = Field(
        default=None, description="When service began; null for a no-show."
    )
    ended_at: Moment = Field(description="When service ended or the no-show was closed.")
    outcome: TicketOutcome


class DeskTicketIn(TicketFields):
    """One finished ticket of the live feed; its id is in the path."""

    ticket_id: Id | None = Field(
        default=None, description="Optional; when given it must equal the path's ticket id."
    )


class DeskDayTicketIn(TicketFields):
    """One ticket of a day file."""

    ticket_id: Id = Field(description="The queue system's id of the ticket, unique per entry.")


class DeskDayIn(EdgeModel):
    """An entry's finished tickets of one day; replaces any earlier file of that entry and day."""

    district: District | None = Field(
        default=None, description="Optional; when given it must be the entry's district."
    )
    tickets: list[DeskDayTicketIn] = Field(max_length=MAX_TICKETS_PER_DAY)


class DeskTicketAccepted(BaseModel):
    """A ticket taken in (201), or the same ticket again (200: counted once)."""

    entry_id: str
    ticket_id: str
    outcome: TicketOutcome
    day: dt.date = Field(description="The Copenhagen day it is counted on (of ended_at).")


class DeskDayAccepted(BaseModel):
    """A day file taken in: published as one deskday.reported event."""

    entry_id: str
    day: dt.date
    tickets: int
    served: int
    no_shows: int


class TimeFigures(BaseModel):
    """A time distribution from a fixed-bucket histogram (bounds in docs/metrics.md)."""

    count: int = Field(description="Tickets measured.")
    mean_seconds: float | None = Field(description="Exact mean (from the sum of times).")
    p50_seconds: float | None = Field(
        description="Median, interpolated linearly inside its histogram bucket; at most the "
        "bucket's width off. In the open top bucket: its lower bound (at least that)."
    )
    p90_seconds: float | None = Field(
        description="90th percentile, interpolated in its histogram bucket like p50."
    )


class DeskLine(BaseModel):
    """A centre's tickets of one service, or of all its services (``service`` null)."""

    service: str | None = Field(description="The service; null on the centre's total line.")
    served: int
    no_shows: int
    no_show_rate: float | None = Field(description="no_shows / (served + no_shows).")
    waiting: TimeFigures = Field(
        description="Waiting time, issued -> called, of every called ticket (served or not)."
    )
    service_time: TimeFigures = Field(
        description="Service time, called -> ended, of served tickets."
    )


class DeskCentre(BaseModel):
    """One citizen-service centre (registry entry): a line per service and a total."""

    entry_id: str
    name: str
    district: District | None
    total: DeskLine
    services: list[DeskLine]


class DeskTimesOut(BaseModel):
    """Waiting and service times per centre and service for a period."""

    period: domain.Period
    first_day: dt.date
    last_day: dt.date
    entry_id: str | None
    service: str | None
    centres: list[DeskCentre]
