"""Taking in desk tickets (decision 0004): the checks every ticket passes, the live feed (one
finished ticket per request, idempotent by its id) and the day file (an entry's tickets of one
day, replace semantics). Each stages its event through the outbox, so the log stays the one
record; a day is taken in one way only (``intake:desk:<entry>:<day>`` is ``live`` or
``file``). Bad input of any kind is refused whole, with every problem named, and stages
nothing.
"""

from __future__ import annotations

import datetime as dt

from pydantic import ValidationError
from redis.exceptions import WatchError

from services.contracts import (
    DeskDayReported,
    DeskTicket,
    DeskTicketEnded,
    District,
    EntryKind,
    EventType,
    HelpChannel,
    TicketOutcome,
    new_event,
)
from services.contracts.guard import find_cpr
from services.metrics import domain, tickets
from services.metrics.desk_models import (
    DeskDayAccepted,
    DeskDayTicketIn,
    DeskTicketAccepted,
    DeskTicketIn,
    TicketFields,
)
from services.metrics.intake import refuse_if_any
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore, RegistryEntry
from services.plumbing.idempotency import IdempotencyStore, request_fingerprint
from services.plumbing.problems import Problem
from services.plumbing.runtime import ServiceRuntime

LIVE = "live"
FILE = "file"


def _mark_ttl(settings: MetricsSettings) -> int:
    """How long the way a day came in is remembered: until no file may be sent for the day."""
    return (settings.desk_file_days + 1) * 86_400


def accepts_desk_tickets(entry: RegistryEntry) -> bool:
    """Whether an entry has desks a queue system calls tickets to: a citizen-service centre,
    or any entry where staff help citizens in person (e.g. a library with a service desk)."""
    return entry.kind is EntryKind.CITIZEN_SERVICE_CENTRE or HelpChannel.IN_PERSON in (
        entry.staff_help
    )


async def desk_entry(store: MetricsStore, runtime: ServiceRuntime, entry_id: str) -> RegistryEntry:
    """The registry entry a queue system reports for, if it may: 404 when the registry has not
    told of it, 422 when it is retired, has no desks, or has no district to count in."""
    entry = await store.entry(runtime.redis, entry_id)
    if entry is None:
        raise Problem(
            404,
            "unknown-entry",
            "Unknown entry",
            detail=f"The registry has not told of entry '{entry_id}'; nothing was taken in.",
        )
    if entry.retired:
        refuse_if_any([("path.entry_id", "The entry is retired in the registry")])
    if not accepts_desk_tickets(entry):
        refuse_if_any(
            [
                (
                    "path.entry_id",
                    f"The entry is a {entry.kind.value} without in-person staff help: it has no "
                    "desks to take tickets at",
                )
            ]
        )
    if entry.district is None:
        refuse_if_any([("path.entry_id", "The entry is city-wide: it has no district to count in")])
    return entry


def _contract_ticket(ticket_id: str, fields: TicketFields) -> DeskTicket:
    """The contract's ticket (times in UTC, so the same ticket has one form)."""

    def utc(moment: dt.datetime | None) -> dt.datetime | None:
        return None if moment is None else moment.astimezone(dt.UTC)

    return DeskTicket(
        ticket_id=ticket_id,
        service=fields.service,
        desk_id=fields.desk_id,
        staff_id=fields.staff_id,
        issued_at=utc(fields.issued_at),
        called_at=utc(fields.called_at),
        served_at=utc(fields.served_at),
        ended_at=utc(fields.ended_at),
        outcome=fields.outcome,
    )


def _contract_problems(exc: ValidationError, where: str) -> list[tuple[str, str]]:
    """A contract model refusing what the checks let through (they cover its rules, so this is
    a safety net): still a 422 naming the place, never a 500."""
    problems = []
    for error in exc.errors(include_input=False):
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "personal_data":
            loc.append(str((error.get("ctx") or {}).get("field", "")))
        problems.append((".".join([where, *[p for p in loc if p]]), error["msg"]))
    return problems


def _kind_conflict(entry_id: str, day: dt.date, first: str) -> Problem:
    way = "the live feed" if first == LIVE else "a day file"
    other = "a day file" if first == LIVE else "a live ticket"
    return Problem(
        409,
        "desk-day-taken-in-another-way",
        "Day already taken in another way",
        detail=f"The tickets of entry '{entry_id}' on {day.isoformat()} came in through {way}; "
        f"{other} for that day would count them twice. Send them the way the day began.",
    )


def _busy() -> Problem:
    return Problem(
        409,
        "request-in-progress",
        "Request in progress",
        detail="Another request for this entry and day is being taken in; retry shortly.",
        headers={"Retry-After": "1"},
    )


# -- the live feed -----------------------------------------------------------------------------


async def take_ticket(
    runtime: ServiceRuntime,
    store: MetricsStore,
    settings: MetricsSettings,
    entry_id: str,
    ticket_id: str,
    ticket: DeskTicketIn,
) -> tuple[int, bytes]:
    """Check one live-feed ticket whole and stage its ``ticket.ended`` event once:
    ``(201, answer)`` the first time, ``(200, the first answer)`` for the same ticket again;
    422 naming every problem, 404 for an unknown entry, 409 for a different ticket under a
    known id or a day that came in as a day file."""
    problems: list[tuple[str, str]] = []
    if find_cpr(ticket_id) is not None:
        problems.append(("path.ticket_id", "Looks like a CPR number; send pseudonymous ids only"))
    if ticket.ticket_id is not None and ticket.ticket_id != ticket_id:
        problems.append(("body.ticket_id", "Must equal the ticket id in the path"))
    refuse_if_any(problems)
    entry = await desk_entry(store, runtime, entry_id)
    now = dt.datetime.now(dt.UTC)
    problems = [
        (f"body.{name}", message)
        for name, message in tickets.ticket_problems(
            ticket, now, dt.timedelta(seconds=settings.desk_clock_skew_seconds)
        )
        if name != "ticket_id"  # the body's id equals the path's, checked above
    ]
    if now - ticket.ended_at > dt.timedelta(days=settings.desk_live_days):
        problems.append(
            (
                "body.ended_at",
                f"Ended more than {settings.desk_live_days} days ago: too late for the live "
                "feed; send the day as a day file",
            )
        )
    if ticket.service not in await store.catalogue(runtime.redis):
        problems.append(
            ("body.service", f"Unknown service '{ticket.service}': not in the registry's catalogue")
        )
    refuse_if_any(problems)
    try:
        contract = _contract_ticket(ticket_id, ticket)
        data = DeskTicketEnded(
            **dict(contract),
            entry_id=entry_id,
            site_id=entry.site_id,
            district=entry.district,
        )
    except ValidationError as exc:
        refuse_if_any(_contract_problems(exc, "body"))
        raise  # pragma: no cover - _refuse raised
    day = domain.local_day(contract.ended_at)
    accepted = DeskTicketAccepted(
        entry_id=entry_id, ticket_id=ticket_id, outcome=contract.outcome, day=day
    )
    return await _record_ticket(runtime, store, settings, contract, data, accepted)


def _ticket_fingerprints(runtime: ServiceRuntime, settings: MetricsSettings) -> IdempotencyStore:
    """The live tickets' fingerprints: the plumbing's idempotency store, keyed by entry and
    ticket id, kept one day longer than the live feed takes a ticket."""
    return IdempotencyStore(
        runtime.redis,
        settings.hub,
        settings.service,
        ttl_seconds=(settings.desk_live_days + 1) * 86_400,
    )


async def _record_ticket(
    runtime: ServiceRuntime,
    store: MetricsStore,
    settings: MetricsSettings,
    contract: DeskTicket,
    data: DeskTicketEnded,
    accepted: DeskTicketAccepted,
) -> tuple[int, bytes]:
    """Stage the ticket's event once: ``(201, answer)`` the first time, ``(200, the first
    answer)`` for the same ticket again; 409 for a different ticket under its id, or when the
    entry's day came in as a day file.

    The fingerprint is claimed first (one script: a concurrent twin gets 409 and retries); the
    event, the fingerprint's stored answer and the day's "live" mark are then written in one
    MULTI/EXEC, WATCHing the claim and the mark, so an event is staged if and only if the
    fingerprint is recorded, and never next to a day file.
    """
    fingerprints = _ticket_fingerprints(runtime, settings)
    scope, key = f"desk:{data.entry_id}", data.ticket_id
    # The ticket as the contract writes it (times in UTC): the same ticket sent with another
    # offset or field order is the same ticket.
    canonical = contract.model_dump_json()
    fingerprint = request_fingerprint(
        "PUT", f"/desk/entries/{data.entry_id}/tickets/{data.ticket_id}", canonical.encode()
    )
    try:
        stored = await fingerprints.begin(scope, key, fingerprint)
    except Problem as problem:
        if problem.slug != "idempotency-key-reused":
            raise
        raise Problem(
            409,
            "ticket-conflict",
            "Ticket already reported differently",
            detail=f"Ticket '{data.ticket_id}' of entry '{data.entry_id}' was reported before "
            "with other contents; a ticket is counted once, as first reported.",
        ) from None
    if stored is not None:
        return 200, stored.body
    body = accepted.model_dump_json().encode()
    try:
        async with runtime.redis.pipeline(transaction=True) as pipe:
            await fingerprints.watch(pipe, scope, key)
            first = await store.watch_desk_intake(pipe, data.entry_id, accepted.day)
            if first is not None and first != LIVE:
                raise _kind_conflict(data.entry_id, accepted.day, first)
            pipe.multi()  # type: ignore[no-untyped-call]
            store.mark_desk_intake(pipe, data.entry_id, accepted.day, LIVE, _mark_ttl(settings))
            runtime.outbox.stage(
                pipe, new_event(EventType.METRICS_DESK_TICKET_ENDED, data, source=settings.source)
            )
            fingerprints.record(
                pipe, scope, key, fingerprint, 201, body, {"content-type": "application/json"}
            )
            await pipe.execute()
    except WatchError:
        await fingerprints.release(scope, key)
        raise _busy() from None
    except BaseException:
        await fingerprints.release(scope, key)
        raise
    return 201, body


# -- the day file ------------------------------------------------------------------------------


async def take_day(
    runtime: ServiceRuntime,
    store: MetricsStore,
    settings: MetricsSettings,
    entry_id: str,
    day: dt.date,
    stated: tuple[District | None, str],
    numbered: list[tuple[str, DeskDayTicketIn]],
    problems: list[tuple[str, str]],
) -> DeskDayAccepted:
    """Check a day file whole (the parse's ``problems`` too), then stage its one event next to
    the day's "file" mark, unless the day came in through the live feed. ``stated`` is the
    district the file states (or None) and where it stated it."""
    entry = await desk_entry(store, runtime, entry_id)
    assert entry.district is not None  # desk_entry refused a city-wide entry
    now = dt.datetime.now(dt.UTC)
    today = domain.today_in_copenhagen(now)
    problems = list(problems)
    if day > today:
        problems.append(("path.day", "The day is in the future"))
    elif (today - day).days > settings.desk_file_days:
        problems.append(
            ("path.day", f"More than {settings.desk_file_days} days ago: too old to take in")
        )
    district, district_field = stated
    if district is not None and district is not entry.district:
        problems.append(
            (
                district_field,
                f"The entry '{entry_id}' is in {entry.district.value}, not {district.value}",
            )
        )
    catalogue = await store.catalogue(runtime.redis)
    skew = dt.timedelta(seconds=settings.desk_clock_skew_seconds)
    for name, ticket in numbered:
        problems.extend(
            (f"{name}.{field}", message)
            for field, message in tickets.ticket_problems(ticket, now, skew, day)
        )
        if ticket.service not in catalogue:
            problems.append(
                (
                    f"{name}.service",
                    f"Unknown service '{ticket.service}': not in the registry's catalogue",
                )
            )
    for index, earlier in tickets.duplicate_problems([t.ticket_id for _, t in numbered]):
        problems.append(
            (
                f"{numbered[index][0]}.ticket_id",
                f"Duplicate ticket: the same ticket id as {numbered[earlier][0]}",
            )
        )
    refuse_if_any(problems)
    try:
        data = DeskDayReported(
            entry_id=entry_id,
            site_id=entry.site_id,
            district=entry.district,
            day=day,
            tickets=tuple(_contract_ticket(t.ticket_id, t) for _, t in numbered),
        )
    except ValidationError as exc:
        refuse_if_any(_contract_problems(exc, "body"))
        raise  # pragma: no cover - _refuse raised
    try:
        async with runtime.redis.pipeline(transaction=True) as pipe:
            first = await store.watch_desk_intake(pipe, entry_id, day)
            if first is not None and first != FILE:
                raise _kind_conflict(entry_id, day, first)
            pipe.multi()  # type: ignore[no-untyped-call]
            store.mark_desk_intake(pipe, entry_id, day, FILE, _mark_ttl(settings))
            runtime.outbox.stage(
                pipe, new_event(EventType.METRICS_DESK_DAY_REPORTED, data, source=settings.source)
            )
            await pipe.execute()
    except WatchError:
        raise _busy() from None
    served = sum(t.outcome is TicketOutcome.SERVED for t in data.tickets)
    return DeskDayAccepted(
        entry_id=entry_id,
        day=day,
        tickets=len(data.tickets),
        served=served,
        no_shows=len(data.tickets) - served,
    )
