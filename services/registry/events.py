"""The registry's events: what it reacts to (one table: event type -> handler) and the event
it publishes for a record.

The handler table is empty: the registry is the source of catalogue services, sites and
entries and consumes no events. Every change publishes the record's full state (the
``*Upserted`` payload) or, for a retirement, the ``*Retired`` payload carrying its id and
version; the store stages the event in the outbox in the same transaction as the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.contracts import CloudEvent, EventType, new_event
from services.contracts.payloads.base import Payload
from services.contracts.payloads.registry import (
    EntryRetired,
    EntryUpserted,
    ServiceRetired,
    ServiceUpserted,
    SiteRetired,
    SiteUpserted,
)
from services.plumbing.consumer import Handler

HANDLERS: dict[EventType, Handler] = {}


@dataclass(frozen=True)
class _Published:
    upserted: EventType
    retired_model: type[Payload]
    retired: EventType


_PUBLISHED: dict[type[Payload], _Published] = {
    SiteUpserted: _Published(
        EventType.REGISTRY_SITE_UPSERTED, SiteRetired, EventType.REGISTRY_SITE_RETIRED
    ),
    EntryUpserted: _Published(
        EventType.REGISTRY_ENTRY_UPSERTED, EntryRetired, EventType.REGISTRY_ENTRY_RETIRED
    ),
    ServiceUpserted: _Published(
        EventType.REGISTRY_SERVICE_UPSERTED, ServiceRetired, EventType.REGISTRY_SERVICE_RETIRED
    ),
}
"""Per state model: the event types of a change and of a retirement, and the retired payload."""


def record_event(state: Payload, retired: bool, source: str) -> CloudEvent[Any]:
    """The event for a record now at ``state``: the upsert with the full state, or for a
    retired record the retirement with the fields its payload carries (id and version)."""
    published = _PUBLISHED[type(state)]
    if retired:
        payload = published.retired_model.model_validate(
            {field: getattr(state, field) for field in published.retired_model.model_fields}
        )
        return new_event(published.retired, payload, source=source)
    return new_event(published.upserted, state, source=source)
