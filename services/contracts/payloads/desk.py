"""Payloads about desk tickets: the citizen-service centres' queue-management systems.

A centre's queue system (Qmatic Orchestra and the like) issues a ticket for a service, calls it
to a desk, and the citizen is served there or does not turn up. The metrics service takes these
in (live, one finished ticket at a time, or as a daily file per entry) and publishes them on
``kanalhub.contacts.v1``; a served ticket is one assisted contact on the ``counter`` channel at
its entry. Both event types are keyed by ``entry_id``, so one centre's tickets and files stay in
order on one partition (a file replaces the file before it). No citizen identity is ever part
of a ticket: desk and staff ids are pseudonymous, and the CPR guard applies to every field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from services.contracts.payloads.base import Code, ContractModel, Id, Payload, StaffId
from services.contracts.reference import District, TicketOutcome

MAX_TICKET_SPAN = dt.timedelta(hours=24)
"""A ticket ends within a day of being issued; anything longer is not a real ticket."""

MAX_TICKETS_PER_DAY = 2000
"""The most tickets one entry's daily file may carry (a large centre serves about 500 a day);
it also keeps one event well under Kafka's default 1 MB record limit."""


class DeskTicket(ContractModel):
    """One finished ticket of a queue-management system: served at a desk, or a no-show."""

    ticket_id: Id
    """The queue system's own id of the ticket, unique for the entry (not the printed number,
    which most systems reuse every day)."""
    service: Code
    """The catalogue service the ticket was issued for."""
    desk_id: Id | None
    """The pseudonymous desk (counter) that called the ticket; null when it was never called."""
    staff_id: StaffId | None
    """The pseudonymous id of the staff member who served; null when not known or no-show."""
    issued_at: AwareDatetime
    """When the citizen took the ticket (or checked in for a booked appointment)."""
    called_at: AwareDatetime | None
    """When the ticket was called to a desk; null for a no-show that was never called."""
    served_at: AwareDatetime | None
    """When service began at the desk; null for a no-show."""
    ended_at: AwareDatetime
    """When the ticket ended: service finished, or the no-show was closed."""
    outcome: TicketOutcome

    @model_validator(mode="after")
    def _times_in_order(self) -> Self:
        if self.outcome is TicketOutcome.SERVED:
            if self.called_at is None or self.served_at is None or self.desk_id is None:
                raise ValueError("a served ticket needs called_at, served_at and desk_id")
        elif self.served_at is not None:
            raise ValueError("a no-show has no served_at")
        moments = [
            moment
            for moment in (self.issued_at, self.called_at, self.served_at, self.ended_at)
            if moment is not None
        ]
        if moments != sorted(moments):
            raise ValueError(
                "times must be in order: issued_at <= called_at <= served_at <= ended_at"
            )
        if self.ended_at - self.issued_at > MAX_TICKET_SPAN:
            raise ValueError("a ticket must end within 24 hours of being issued")
        return self

    @property
    def waiting_seconds(self) -> float | None:
        """Waiting time, issued -> called; None when the ticket was never called."""
        if self.called_at is None:
            return None
        return (self.called_at - self.issued_at).total_seconds()

    @property
    def service_seconds(self) -> float | None:
        """Service time, called -> ended, for a served ticket; None for a no-show."""
        if self.outcome is not TicketOutcome.SERVED or self.called_at is None:
            return None
        return (self.ended_at - self.called_at).total_seconds()


class DeskTicketEnded(DeskTicket, Payload):
    """A citizen-service centre's queue system reported one finished ticket (live feed).

    Published by the metrics service when a queue system reports a ticket that ended. A served
    ticket is one ``counter`` / ``assisted`` contact at ``entry_id`` in ``district``, on the
    Copenhagen day of ``ended_at``; a no-show is no contact and is counted as a no-show.
    The metrics service publishes a ticket once: the same ticket reported again is not
    published again.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("entry_id",)

    entry_id: Id
    """The citizen-service centre (registry entry) the ticket was issued at."""
    site_id: Id | None
    """The registry site of the entry when the ticket was taken in."""
    district: District
    """The entry's district when the ticket was taken in."""


class DeskDayReported(Payload):
    """A citizen-service centre delivered its finished tickets of one day as a file.

    Published by the metrics service for centres without a live feed. The file *replaces*
    every earlier file of the same entry and day (a corrected file is sent again in full), so
    re-delivery and corrections are both safe. Served tickets are ``counter`` / ``assisted``
    contacts on ``day``; no-shows are counted as no-shows.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("entry_id",)

    entry_id: Id
    """The citizen-service centre (registry entry) the file is from."""
    site_id: Id | None
    """The registry site of the entry when the file was taken in."""
    district: District
    """The entry's district when the file was taken in."""
    day: dt.date
    """The Copenhagen day every ticket of the file ended on."""
    tickets: Annotated[tuple[DeskTicket, ...], Field(max_length=MAX_TICKETS_PER_DAY)]
    """The day's finished tickets; empty means the centre had none (it replaces an earlier
    file all the same)."""

    @model_validator(mode="after")
    def _unique_tickets(self) -> Self:
        ids = [ticket.ticket_id for ticket in self.tickets]
        if len(set(ids)) != len(ids):
            raise ValueError("a ticket id appears twice in the file")
        return self
