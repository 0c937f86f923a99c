"""Payloads the mobile service publishes on ``kanalhub.mobile.v1``, all keyed by ``visit_id``.

A visit's state events and the contacts recorded at it share the key, so a consumer sees a
visit planned before its contacts and its completion.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import AwareDatetime, model_validator

from services.contracts.payloads.base import Code, Id, NonEmptyCodes, Payload, StaffIds
from services.contracts.reference import ContactMode, District


class VisitFields(Payload):
    """What every visit event says: the full state of one mobile citizen-service visit."""

    key_fields: ClassVar[tuple[str, ...]] = ("visit_id",)

    visit_id: Id
    site_id: Id | None
    """The registry site visited; null for a place not in the registry (a station forecourt)."""
    district: District
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    """Later than ``starts_at``."""
    services: NonEmptyCodes
    """Codes of the catalogue services offered on the visit."""
    staff: StaffIds
    """Pseudonymous ids of the staff assigned; may be empty while planning."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be later than starts_at")
        return self


class VisitPlanned(VisitFields):
    """A mobile citizen-service visit was planned, or its plan changed.

    Published by the mobile service when a planner saves the visit.
    """


class VisitCancelled(VisitFields):
    """A planned mobile visit was cancelled and will not take place.

    Published by the mobile service.
    """


class VisitCompleted(VisitFields):
    """A mobile visit took place and was closed by its staff; its contacts are all recorded.

    Published by the mobile service. ``starts_at``/``ends_at`` are the actual times.
    """


class ContactRecorded(Payload):
    """Staff recorded one contact at a mobile visit: one contact on the mobile channel.

    Published by the mobile service. No citizen data is recorded, only what the matter was and
    how it was handled.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("visit_id",)

    contact_id: Id
    visit_id: Id
    district: District
    service: Code
    mode: ContactMode
    """``self_service`` when the citizen did it on their own device with guidance only."""
    onboarded_to_digital: bool
    """True when the citizen was helped to start using the digital self-service."""
    at: AwareDatetime
    site_id: Id | None = None
    """The registry site of the visit; null for a place not in the registry (and in events
    published before sites were carried)."""
    entry_id: Id | None = None
    """The registry entry (a mobile stop) at that site, when the registry has one."""
