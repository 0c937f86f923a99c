"""Events as the kvik, mobile and registry services would publish them, for the metrics tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.contracts import CloudEvent, ContactMode, EventType, Payload, new_event
from tests.unit.contracts.samples import sample_payload

AT = dt.datetime(2024, 1, 15, 9, 0, tzinfo=dt.UTC)


def payload(event_type: EventType, **changes: Any) -> Payload:
    """The sample payload of ``event_type`` with ``changes``."""
    sample = sample_payload(event_type)
    return type(sample).model_validate({**sample.model_dump(), **changes})


def session(event_type: EventType, at: dt.datetime = AT, **changes: Any) -> CloudEvent:
    fields: dict[str, Any] = {
        "session_id": str(uuid.uuid4()),
        "started_at": at - dt.timedelta(minutes=6),
        "ended_at": at,
        "district": "valby",
        "service": "passport",
    }
    data = payload(event_type, **{**fields, **changes})
    return new_event(event_type, data, source="/kanalhub/kvik", time=at)


def mobile_contact(mode: ContactMode, at: dt.datetime = AT) -> CloudEvent:
    data = payload(
        EventType.MOBILE_CONTACT_RECORDED,
        contact_id=str(uuid.uuid4()),
        district="valby",
        service="passport",
        mode=mode,
        at=at,
    )
    return new_event(EventType.MOBILE_CONTACT_RECORDED, data, source="/kanalhub/mobile", time=at)


def report(self_service: int, assisted: int, **changes: Any) -> CloudEvent:
    """A contact-centre style report (norrebro, 2024-01-15 unless changed)."""
    data = payload(
        EventType.METRICS_COUNT_REPORTED,
        self_service=self_service,
        assisted=assisted,
        **changes,
    )
    return new_event(EventType.METRICS_COUNT_REPORTED, data, source="/kanalhub/metrics")
