"""What the metrics service reacts to, in one table: event type -> handler.

Each handler maps its event to contacts and figures (``domain``) and adds the counter changes to
the transaction's counters or queues other writes on the batch's MULTI pipeline (``store``); the
consumer applies the counters and the dedupe marks in one script in the same transaction.
A help event names only its registry entry; one for an entry the registry has not told of is
dead-lettered (reason ``unknown_entry``) and can be re-driven once it has
(``kanalhub metrics redrive``).
"""

from __future__ import annotations

from collections import Counter

from services.contracts import (
    CloudEvent,
    ContactRecorded,
    CountReported,
    DeskDayReported,
    DeskTicketEnded,
    District,
    EntryRetired,
    EntryUpserted,
    EventType,
    HelpAnswered,
    HelpRequested,
    KioskOffline,
    KioskOnline,
    KioskRegistered,
    ServiceRetired,
    ServiceUpserted,
    SessionAbandoned,
    SessionCompleted,
    SessionReferred,
    SiteRetired,
    SiteUpserted,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
)
from services.metrics import domain, tickets
from services.metrics.store import MetricsStore
from services.plumbing.consumer import Handler, Transaction, UnprocessableEvent
from services.plumbing.settings import HubSettings

UNKNOWN_ENTRY = "unknown_entry"
"""Dead-letter reason: the event names a registry entry the metrics service does not know."""


def handlers(settings: HubSettings) -> dict[EventType, Handler]:
    """The handler table, with the store of the hub ``settings`` (its key prefix)."""
    store = MetricsStore(settings)

    async def district_of_entry(tx: Transaction, entry_id: str) -> District:
        entry = await store.entry(tx.redis, entry_id)
        if entry is None or entry.district is None:
            raise UnprocessableEvent(
                UNKNOWN_ENTRY, f"entry {entry_id} is not (yet) known from the registry"
            )
        return entry.district

    async def session_completed(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SessionCompleted)
        store.add_contacts(store.counts(tx), domain.tallies_of_session_completed(event.data))
        store.add_session(store.counts(tx), event.data.district, "completed", event.data.help)

    async def session_abandoned(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SessionAbandoned)
        store.add_abandonment(store.counts(tx), domain.abandonment_of(event.data))
        store.add_session(store.counts(tx), event.data.district, "abandoned", event.data.help)

    async def session_referred(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SessionReferred)
        store.add_contacts(store.counts(tx), domain.tallies_of_session_referred(event.data))
        store.add_session(store.counts(tx), event.data.district, "referred", event.data.help)

    async def contact_recorded(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, ContactRecorded)
        contact = event.data
        store.add_contacts(store.counts(tx), domain.tallies_of_contact_recorded(contact))
        store.add_mobile_contact(
            store.counts(tx),
            contact.district,
            domain.local_day(contact.at),
            contact.onboarded_to_digital,
        )

    async def desk_ticket_ended(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, DeskTicketEnded)
        ticket = event.data
        counts = store.counts(tx)
        store.add_contacts(
            counts, tickets.contacts_of(ticket.entry_id, ticket.site_id, ticket.district, [ticket])
        )
        store.add_desk_tickets(counts, ticket.entry_id, [ticket])

    async def desk_day_reported(event: CloudEvent, tx: Transaction) -> None:
        # Replace semantics: everything the file adds (contacts in every rollup, desk figures)
        # is summed here and handed to one script that takes back the previous file's part.
        assert isinstance(event.data, DeskDayReported)
        report = event.data
        contribution: Counter[tuple[str, str]] = Counter()
        store.add_contacts(
            contribution,
            tickets.contacts_of(report.entry_id, report.site_id, report.district, report.tickets),
        )
        store.add_desk_tickets(contribution, report.entry_id, report.tickets)
        store.replace_desk_file(tx.pipe, report.entry_id, report.day, contribution)

    async def count_reported(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, CountReported)
        store.replace_report(tx.pipe, event.data)

    def kiosk_handler(state: str) -> Handler:
        async def kiosk_changed(event: CloudEvent, tx: Transaction) -> None:
            assert isinstance(event.data, KioskRegistered | KioskOnline | KioskOffline)
            kiosk = event.data
            store.set_kiosk(tx.pipe, kiosk.kiosk_id, state, kiosk.entry_id, kiosk.district)

        return kiosk_changed

    async def help_requested(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, HelpRequested)
        request = event.data
        district = await district_of_entry(tx, request.entry_id)
        store.add_help_request(
            store.counts(tx), district, request.channel, domain.local_day(request.requested_at)
        )

    async def help_answered(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, HelpAnswered)
        answer = event.data
        district = await district_of_entry(tx, answer.entry_id)
        wait = (answer.answered_at - answer.requested_at).total_seconds()
        store.add_help_answer(
            tx.pipe,
            store.counts(tx),
            district,
            answer.channel,
            domain.local_day(answer.answered_at),
            wait,
        )

    def visit_handler(state: str) -> Handler:
        async def visit_changed(event: CloudEvent, tx: Transaction) -> None:
            assert isinstance(event.data, VisitPlanned | VisitCompleted | VisitCancelled)
            visit = event.data
            staffed = domain.staffed_seconds(visit) if state == "completed" else 0
            store.visit_state(
                tx.pipe,
                visit.visit_id,
                state,
                visit.district,
                domain.local_day(visit.ends_at),
                staffed,
            )

        return visit_changed

    async def entry_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryUpserted)
        store.upsert_entry(tx.pipe, event.data)

    async def service_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, ServiceUpserted)
        store.set_service(tx.pipe, event.data.code, event.data.general_needs)

    async def service_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, ServiceRetired)
        store.retire_service(tx.pipe, event.data.code)

    async def entry_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryRetired)
        store.retire_entry(tx.pipe, event.data.entry_id, event.data.version)

    async def site_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SiteUpserted)
        store.upsert_site(tx.pipe, event.data)

    async def site_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SiteRetired)
        store.retire_site(tx.pipe, event.data.site_id, event.data.version)

    return {
        EventType.KVIK_SESSION_COMPLETED: session_completed,
        EventType.KVIK_SESSION_ABANDONED: session_abandoned,
        EventType.KVIK_SESSION_REFERRED: session_referred,
        EventType.KVIK_KIOSK_REGISTERED: kiosk_handler("registered"),
        EventType.KVIK_KIOSK_ONLINE: kiosk_handler("online"),
        EventType.KVIK_KIOSK_OFFLINE: kiosk_handler("offline"),
        EventType.KVIK_HELP_REQUESTED: help_requested,
        EventType.KVIK_HELP_ANSWERED: help_answered,
        EventType.MOBILE_VISIT_PLANNED: visit_handler("planned"),
        EventType.MOBILE_VISIT_COMPLETED: visit_handler("completed"),
        EventType.MOBILE_VISIT_CANCELLED: visit_handler("cancelled"),
        EventType.MOBILE_CONTACT_RECORDED: contact_recorded,
        EventType.METRICS_COUNT_REPORTED: count_reported,
        EventType.METRICS_DESK_TICKET_ENDED: desk_ticket_ended,
        EventType.METRICS_DESK_DAY_REPORTED: desk_day_reported,
        EventType.REGISTRY_ENTRY_UPSERTED: entry_upserted,
        EventType.REGISTRY_ENTRY_RETIRED: entry_retired,
        EventType.REGISTRY_SITE_UPSERTED: site_upserted,
        EventType.REGISTRY_SITE_RETIRED: site_retired,
        EventType.REGISTRY_SERVICE_UPSERTED: service_upserted,
        EventType.REGISTRY_SERVICE_RETIRED: service_retired,
    }
