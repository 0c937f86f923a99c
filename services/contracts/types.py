"""Every event type of the contract, and the topic each one is published on.

Type names are written out in full, ``dk.kanalhub.<service>.<noun>.<verb>.v<N>``, and never
derived from a class name: a refactor must not be able to change what is on the wire.
"""

from __future__ import annotations

from enum import StrEnum

from services.contracts.topics import Topic


class EventType(StrEnum):
    """The CloudEvents ``type`` of every event in the contract."""

    REGISTRY_SITE_UPSERTED = "dk.kanalhub.registry.site.upserted.v1"
    REGISTRY_SITE_RETIRED = "dk.kanalhub.registry.site.retired.v1"
    REGISTRY_ENTRY_UPSERTED = "dk.kanalhub.registry.entry.upserted.v1"
    REGISTRY_ENTRY_RETIRED = "dk.kanalhub.registry.entry.retired.v1"
    REGISTRY_SERVICE_UPSERTED = "dk.kanalhub.registry.service.upserted.v1"
    REGISTRY_SERVICE_RETIRED = "dk.kanalhub.registry.service.retired.v1"

    KVIK_SESSION_COMPLETED = "dk.kanalhub.kvik.session.completed.v1"
    KVIK_SESSION_ABANDONED = "dk.kanalhub.kvik.session.abandoned.v1"
    KVIK_SESSION_REFERRED = "dk.kanalhub.kvik.session.referred.v1"
    KVIK_KIOSK_REGISTERED = "dk.kanalhub.kvik.kiosk.registered.v1"
    KVIK_KIOSK_ONLINE = "dk.kanalhub.kvik.kiosk.online.v1"
    KVIK_KIOSK_OFFLINE = "dk.kanalhub.kvik.kiosk.offline.v1"
    KVIK_HELP_REQUESTED = "dk.kanalhub.kvik.help.requested.v1"
    KVIK_HELP_ANSWERED = "dk.kanalhub.kvik.help.answered.v1"

    MOBILE_VISIT_PLANNED = "dk.kanalhub.mobile.visit.planned.v1"
    MOBILE_VISIT_CANCELLED = "dk.kanalhub.mobile.visit.cancelled.v1"
    MOBILE_VISIT_COMPLETED = "dk.kanalhub.mobile.visit.completed.v1"
    MOBILE_CONTACT_RECORDED = "dk.kanalhub.mobile.contact.recorded.v1"

    # Published by the metrics service, which takes counts in from other channel systems.
    METRICS_COUNT_REPORTED = "dk.kanalhub.metrics.count.reported.v1"
    METRICS_DISTRICT_SHARE_CHANGED = "dk.kanalhub.metrics.share.changed.v1"
    # Published by the metrics service, which takes tickets in from the centres' queue systems.
    METRICS_DESK_TICKET_ENDED = "dk.kanalhub.metrics.ticket.ended.v1"
    METRICS_DESK_DAY_REPORTED = "dk.kanalhub.metrics.deskday.reported.v1"


EVENT_TOPIC: dict[EventType, Topic] = {
    EventType.REGISTRY_SITE_UPSERTED: Topic.REGISTRY,
    EventType.REGISTRY_SITE_RETIRED: Topic.REGISTRY,
    EventType.REGISTRY_ENTRY_UPSERTED: Topic.REGISTRY,
    EventType.REGISTRY_ENTRY_RETIRED: Topic.REGISTRY,
    EventType.REGISTRY_SERVICE_UPSERTED: Topic.REGISTRY,
    EventType.REGISTRY_SERVICE_RETIRED: Topic.REGISTRY,
    EventType.KVIK_SESSION_COMPLETED: Topic.KVIK,
    EventType.KVIK_SESSION_ABANDONED: Topic.KVIK,
    EventType.KVIK_SESSION_REFERRED: Topic.KVIK,
    EventType.KVIK_KIOSK_REGISTERED: Topic.KVIK,
    EventType.KVIK_KIOSK_ONLINE: Topic.KVIK,
    EventType.KVIK_KIOSK_OFFLINE: Topic.KVIK,
    EventType.KVIK_HELP_REQUESTED: Topic.KVIK,
    EventType.KVIK_HELP_ANSWERED: Topic.KVIK,
    EventType.MOBILE_VISIT_PLANNED: Topic.MOBILE,
    EventType.MOBILE_VISIT_CANCELLED: Topic.MOBILE,
    EventType.MOBILE_VISIT_COMPLETED: Topic.MOBILE,
    EventType.MOBILE_CONTACT_RECORDED: Topic.MOBILE,
    EventType.METRICS_COUNT_REPORTED: Topic.CONTACTS,
    EventType.METRICS_DISTRICT_SHARE_CHANGED: Topic.CONTACTS,
    EventType.METRICS_DESK_TICKET_ENDED: Topic.CONTACTS,
    EventType.METRICS_DESK_DAY_REPORTED: Topic.CONTACTS,
}
"""The topic each event type is published on; the dead-letter topic carries no type of its own."""
