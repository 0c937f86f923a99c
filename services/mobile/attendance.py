"""The use cases around a visit's citizens: bookings before it, the contacts staff record at
it, and the utilisation figures drawn from both. Refusals as in ``service.py`` (domain errors,
mapped to problem+json by ``api.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from services.contracts import ContactRecorded, EventType, new_event
from services.contracts.envelope import CloudEvent
from services.mobile import domain
from services.mobile.domain import (
    ContactRecord,
    Invalid,
    NotFound,
    StateConflict,
    Visit,
    local_iso,
)
from services.mobile.schemas import BookingIn, ContactIn
from services.mobile.service import (
    Saved,
    date_range,
    derived_id,
    utc_now,
    visit_or_not_found,
)
from services.mobile.store import MobileStore
from services.plumbing.auth import Principal
from services.plumbing.problems import FieldProblem

# --- bookings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    """A booked slot of a visit, with its local window."""

    booking_ref: str
    slot: int
    starts_at: str
    ends_at: str


def _booking(visit: Visit, ref: str, slot: int) -> Booking:
    length = (visit.ends_at - visit.starts_at) / visit.slots
    start = visit.starts_at + length * slot
    return Booking(ref, slot, local_iso(start), local_iso(start + length))


async def book(store: MobileStore, visit_id: str, body: BookingIn) -> Saved[Booking]:
    """Book a citizen into a slot (the first free one, or ``body.slot``); the same reference
    again answers its slot; concurrent bookings never share a slot."""
    created = True

    def decide(visit: Visit | None, bookings: dict[str, int]) -> int | None:
        nonlocal created
        if visit is None:
            raise NotFound(f"visit {visit_id}")
        if body.booking_ref in bookings:
            if body.slot is not None and bookings[body.booking_ref] != body.slot:
                raise StateConflict("already-booked", "Already booked", "The reference has a slot.")
            created = False
            return None
        if visit.status not in domain.BOOKABLE:
            raise StateConflict(
                "visit-not-bookable",
                "Visit not bookable",
                f"The visit is {visit.status.value}.",
            )
        taken = set(bookings.values())
        if body.slot is not None:
            if body.slot >= visit.slots:
                raise Invalid(
                    [FieldProblem(field="body.slot", message=f"the visit has {visit.slots} slots")]
                )
            if body.slot in taken:
                raise StateConflict("slot-taken", "Slot taken", "Choose another slot.")
            return body.slot
        free = [s for s in range(visit.slots) if s not in taken]
        if not free:
            raise StateConflict("fully-booked", "Fully booked", "No slot is free.")
        return free[0]

    slot = await store.book(visit_id, decide, body.booking_ref)
    visit = await store.visit(visit_id)
    assert visit is not None
    return Saved(_booking(visit, body.booking_ref, slot), created)


async def bookings(store: MobileStore, visit_id: str) -> list[Booking]:
    """A visit's bookings by slot."""
    visit = await visit_or_not_found(store, visit_id)
    found = await store.bookings(visit_id)
    return [_booking(visit, ref, slot) for ref, slot in sorted(found.items(), key=lambda kv: kv[1])]


async def cancel_booking(store: MobileStore, visit_id: str, booking_ref: str) -> None:
    """Cancel a booking; its slot is free again."""
    if not await store.unbook(visit_id, booking_ref):
        raise NotFound(f"booking {booking_ref} on visit {visit_id}")


# --- contacts ------------------------------------------------------------------------------


async def record_contact(
    store: MobileStore,
    visit_id: str,
    body: ContactIn,
    planner: Principal,
    idempotency_key: str | None,
) -> Saved[ContactRecord]:
    """Record one contact at a visit in progress or completed, staging ContactRecorded in the
    district of the visit's place; a retry with the same id answers the stored contact."""
    now = utc_now()
    at = domain.as_copenhagen(body.at) if body.at is not None else now
    if at > now + dt.timedelta(minutes=5):
        raise Invalid([FieldProblem(field="body.at", message="is in the future")])
    contact = ContactRecord(
        contact_id=body.contact_id or derived_id("contact", planner.actor, idempotency_key),
        service=body.service,
        mode=body.mode,
        onboarded_to_digital=body.onboarded_to_digital,
        at=at.astimezone(dt.UTC),
        booking_ref=body.booking_ref,
    )
    compared = {"service", "mode", "onboarded_to_digital", "booking_ref"} | (
        {"at"} if body.at is not None else set()
    )
    stored = contact
    # The mobile stop at the visit's site, looked up before the transaction (``decide`` runs
    # inside it and cannot wait); used only if the visit is still at that site there.
    before = await store.visit(visit_id)
    stop_site = before.place.site_id if before is not None else None
    stop = domain.mobile_stop_of(await store.entries_at(stop_site)) if stop_site else None

    def decide(visit: Visit | None, existing: ContactRecord | None) -> CloudEvent | None:
        nonlocal stored
        if visit is None:
            raise NotFound(f"visit {visit_id}")
        if existing is not None:
            if existing.model_dump(include=compared) != contact.model_dump(include=compared):
                raise StateConflict(
                    "contact-id-reused",
                    "Contact id reused",
                    "A different contact was recorded under this id.",
                )
            stored = existing
            return None
        if visit.status not in domain.RECORDABLE:
            raise StateConflict(
                "visit-not-in-progress",
                "Visit not in progress",
                f"The visit is {visit.status.value}; contacts are recorded once it "
                "is in progress or completed.",
            )
        if contact.service not in visit.services:
            raise Invalid([FieldProblem(field="body.service", message="not offered on this visit")])
        payload = ContactRecorded(
            contact_id=contact.contact_id,
            visit_id=visit_id,
            district=visit.place.district,
            service=contact.service,
            mode=contact.mode,
            onboarded_to_digital=contact.onboarded_to_digital,
            at=contact.at,
            site_id=visit.place.site_id,
            entry_id=stop if visit.place.site_id == stop_site else None,
        )
        return new_event(EventType.MOBILE_CONTACT_RECORDED, payload, source=store.source)

    created = await store.record_contact(visit_id, decide, contact)
    return Saved(stored, created)


async def contacts(store: MobileStore, visit_id: str) -> list[ContactRecord]:
    """A visit's contacts, by time."""
    await visit_or_not_found(store, visit_id)
    return await store.contacts(visit_id)


# --- utilisation ---------------------------------------------------------------------------


async def _usage(store: MobileStore, visits: Sequence[Visit]) -> dict[str, object]:
    triples = [
        (v, await store.contacts(v.visit_id), len(await store.bookings(v.visit_id))) for v in visits
    ]
    return domain.utilisation(triples)


async def visit_utilisation(store: MobileStore, visit_id: str) -> dict[str, object]:
    """Contacts per staffed hour, bookings used and drop-ins of one visit."""
    visit = await visit_or_not_found(store, visit_id)
    return await _usage(store, [visit])


async def place_utilisation(
    store: MobileStore, place_id: str, start: dt.date | None, end: dt.date | None
) -> dict[str, object]:
    """The same figures over every visit to a place (in ``[start, end)`` if given)."""
    since, until = date_range(start, end, default_past=3660, default_future=3660)
    return await _usage(store, await store.calendar("place", place_id, since, until))
