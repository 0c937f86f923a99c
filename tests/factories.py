"""Real contract events for tests that need some event to move through the plumbing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.contracts import CloudEvent, ContactMode, District, EventType, new_event
from services.contracts.payloads.mobile import ContactRecorded

_EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def contact_recorded(visit_id: str = "visit-1", seq: int = 0) -> CloudEvent:
    """A mobile contact event on visit ``visit_id`` (the Kafka key); ``seq`` orders its time."""
    return new_event(
        EventType.MOBILE_CONTACT_RECORDED,
        ContactRecorded(
            contact_id=f"contact-{uuid4().hex[:12]}",
            visit_id=visit_id,
            district=District.NORREBRO,
            service="change_of_address",
            mode=ContactMode.ASSISTED,
            onboarded_to_digital=seq % 2 == 0,
            at=_EPOCH + timedelta(seconds=seq),
        ),
        source="/kanalhub/mobile",
    )
