"""Desk tickets from the citizen-service centres' queue systems (decision 0004): the live feed
(one finished ticket per request), the day file per entry (JSON or CSV, replace semantics),
and the waiting and service times per centre and service.

Writes need ``metrics:desk`` and publish events (``ticket.ended``, ``deskday.reported``) through
the outbox, so the log stays the one record; the counting is in ``events`` and ``tickets``.
Bad input of any kind is refused whole, with every problem named, and stages nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
)
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
from services.contracts.payloads.base import Code, Id, StaffId
from services.contracts.payloads.desk import MAX_TICKETS_PER_DAY
from services.metrics import domain, tickets
from services.metrics.deps import RuntimeDep, SettingsDep, StoreDep
from services.metrics.intake import refuse_if_any
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore, RegistryEntry
from services.plumbing.auth import DeskReporter, MetricsReader
from services.plumbing.edge_models import EdgeModel
from services.plumbing.idempotency import IdempotencyStore, request_fingerprint
from services.plumbing.problems import FieldProblem, Problem, problem_responses
from services.plumbing.redis_replies import reply_text
from services.plumbing.runtime import ServiceRuntime

LIVE = "live"
FILE = "file"
CSV_COLUMNS = (
    "ticket_id",
    "service",
    "desk_id",
    "staff_id",
    "issued_at",
    "called_at",
    "served_at",
    "ended_at",
    "outcome",
)

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


class _DeskRoute(APIRoute):
    """A route whose body that is not JSON at all is a 400 (the request is malformed), not a
    422 (well-formed but invalid)."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except RequestValidationError as exc:
                if any(error.get("type") == "json_invalid" for error in exc.errors()):
                    raise Problem(
                        400,
                        "body-not-json",
                        "Body is not JSON",
                        detail="The request body is not valid JSON; nothing was taken in.",
                        errors=[FieldProblem(field="body", message="The body is not valid JSON")],
                    ) from None
                raise
            return response

        return handle


router = APIRouter(tags=["desk"], route_class=_DeskRoute)

WRITE_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 422)
READ_PROBLEMS = problem_responses(401, 403, 422)


# -- schemas -----------------------------------------------------------------------------------


class _TicketFields(EdgeModel):
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


class DeskTicketIn(_TicketFields):
    """One finished ticket of the live feed; its id is in the path."""

    ticket_id: Id | None = Field(
        default=None, description="Optional; when given it must equal the path's ticket id."
    )


class DeskDayTicketIn(_TicketFields):
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


# -- shared checks -----------------------------------------------------------------------------


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


def _contract_ticket(ticket_id: str, fields: _TicketFields) -> DeskTicket:
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


@router.put(
    "/desk/entries/{entry_id}/tickets/{ticket_id}",
    status_code=201,
    response_model=DeskTicketAccepted,
    responses={
        200: {"model": DeskTicketAccepted, "description": "The same ticket again: counted once"},
        **WRITE_PROBLEMS,
    },
    summary="Take in one finished desk ticket from a queue system (live feed)",
)
async def put_ticket(
    entry_id: Annotated[Id, Path(description="The registry entry of the centre.")],
    ticket_id: Annotated[Id, Path(description="The queue system's id of the ticket.")],
    ticket: DeskTicketIn,
    reporter: DeskReporter,
    runtime: RuntimeDep,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """A finished ticket, idempotent by its id: the first time it is published as a
    ``ticket.ended`` event (201); the same ticket again is answered 200 and counted once; a
    different ticket under a known id is a 409. A served ticket is one counter/assisted contact
    at the entry on the Copenhagen day of ``ended_at``; a no-show is no contact.

    Only tickets that ended within ``desk_live_days`` (7) are taken; a day whose tickets came in
    as a day file takes no live ticket (409)."""
    del reporter
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
    status, body = await _record_ticket(runtime, store, settings, contract, data, accepted)
    return Response(body, status_code=status, media_type="application/json")


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
    mark = store.desk_intake_key(data.entry_id, accepted.day)
    try:
        async with runtime.redis.pipeline(transaction=True) as pipe:
            await fingerprints.watch(pipe, scope, key)
            await pipe.watch(mark)
            first = await pipe.get(mark)
            if first is not None and reply_text(first) != LIVE:
                raise _kind_conflict(data.entry_id, accepted.day, reply_text(first))
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(mark, LIVE, ex=(settings.desk_file_days + 1) * 86_400)
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

EntryPath = Annotated[Id, Path(description="The registry entry of the centre.")]
DayPath = Annotated[IsoDay, Path(description="The Copenhagen day of the file, YYYY-MM-DD.")]


@router.put(
    "/desk/entries/{entry_id}/days/{day}",
    status_code=202,
    response_model=DeskDayAccepted,
    responses=WRITE_PROBLEMS,
    summary="Take in a centre's finished tickets of one day (day file, JSON)",
)
async def put_day(
    entry_id: EntryPath,
    day: DayPath,
    file: DeskDayIn,
    reporter: DeskReporter,
    runtime: RuntimeDep,
    store: StoreDep,
    settings: SettingsDep,
) -> DeskDayAccepted:
    """Every ticket that ended on ``day`` at the entry, for centres without a live feed. The
    file *replaces* the entry's earlier file of that day, so sending it again changes nothing
    and a corrected file replaces. Published as one ``deskday.reported`` event (202).

    Every ticket is checked (errors name ``body.tickets[i].field``); one bad ticket refuses the
    whole file. A day whose tickets came in through the live feed takes no file (409)."""
    del reporter
    numbered = [(f"body.tickets[{index}]", ticket) for index, ticket in enumerate(file.tickets)]
    return await _take_day(
        runtime, store, settings, entry_id, day, (file.district, "body.district"), numbered, []
    )


@router.put(
    "/desk/entries/{entry_id}/days/{day}/csv",
    status_code=202,
    response_model=DeskDayAccepted,
    responses=WRITE_PROBLEMS,
    summary="Take in a centre's finished tickets of one day (day file, CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": ",".join(CSV_COLUMNS)
                    + "\nq-0042,passport,desk-04,staff-a1b2c3,2024-01-15T09:02:00+01:00,"
                    "2024-01-15T09:14:00+01:00,2024-01-15T09:15:00+01:00,"
                    "2024-01-15T09:23:00+01:00,served\n",
                }
            },
        }
    },
)
async def put_day_csv(
    request: Request,
    entry_id: EntryPath,
    day: DayPath,
    reporter: DeskReporter,
    runtime: RuntimeDep,
    store: StoreDep,
    settings: SettingsDep,
    district: Annotated[
        District | None,
        Query(description="Optional; when given it must be the entry's district."),
    ] = None,
) -> DeskDayAccepted:
    """The same day file as UTF-8 CSV with the header
    ``ticket_id,service,desk_id,staff_id,issued_at,called_at,served_at,ended_at,outcome``; an
    empty cell is null. Errors name the line of the file (``line 7.ended_at``; header = line 1)."""
    del reporter
    numbered, problems = parse_day_csv(await request.body())
    return await _take_day(
        runtime, store, settings, entry_id, day, (district, "query.district"), numbered, problems
    )


def parse_day_csv(
    raw: bytes,
) -> tuple[list[tuple[str, DeskDayTicketIn]], list[tuple[str, str]]]:
    """The valid tickets of a CSV day file, each with the name of its line (``line 2`` is the
    first after the header), and ``(field, message)`` for everything that is not valid."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [("body", "The file is not UTF-8 text")]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return [], [("body", f"The file is not valid CSV: {exc}")]
    if not rows or tuple(cell.strip() for cell in rows[0]) != CSV_COLUMNS:
        return [], [("line 1", f"The header must be: {','.join(CSV_COLUMNS)}")]
    body = [row for row in rows[1:] if row]  # a blank line (a trailing newline) is no ticket
    if len(body) > MAX_TICKETS_PER_DAY:
        return [], [("body", f"The file has more than {MAX_TICKETS_PER_DAY} tickets")]
    tickets_in: list[tuple[str, DeskDayTicketIn]] = []
    problems: list[tuple[str, str]] = []
    for index, row in enumerate(body):
        name = domain.csv_line_name(index)
        if len(row) != len(CSV_COLUMNS):
            problems.append((name, f"Expected {len(CSV_COLUMNS)} columns, found {len(row)}"))
            continue
        cells = {
            column: (cell.strip() or None) for column, cell in zip(CSV_COLUMNS, row, strict=True)
        }
        try:
            tickets_in.append((name, DeskDayTicketIn.model_validate(cells)))
        except ValidationError as exc:
            problems.extend(
                (".".join([name, *(str(p) for p in error["loc"])]), error["msg"])
                for error in exc.errors(include_input=False)
            )
    return tickets_in, problems


async def _take_day(
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
    mark = store.desk_intake_key(entry_id, day)
    try:
        async with runtime.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(mark)
            first = await pipe.get(mark)
            if first is not None and reply_text(first) != FILE:
                raise _kind_conflict(entry_id, day, reply_text(first))
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(mark, FILE, ex=(settings.desk_file_days + 1) * 86_400)
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


# -- waiting and service times ---------------------------------------------------------------


def _times(histogram: tickets.Histogram) -> TimeFigures:
    return TimeFigures(
        count=histogram.count,
        mean_seconds=histogram.mean_seconds,
        p50_seconds=histogram.percentile(0.5),
        p90_seconds=histogram.percentile(0.9),
    )


def _line(service: str | None, figures: tickets.DeskFigures) -> DeskLine:
    return DeskLine(
        service=service,
        served=figures.served,
        no_shows=figures.no_shows,
        no_show_rate=figures.no_show_rate,
        waiting=_times(figures.waiting),
        service_time=_times(figures.service_time),
    )


@router.get(
    "/desk/times",
    response_model=DeskTimesOut,
    responses=READ_PROBLEMS,
    summary="Waiting and service times per citizen-service centre and service",
)
async def get_desk_times(
    _reader: MetricsReader,
    store: StoreDep,
    runtime: RuntimeDep,
    period: Annotated[
        domain.Period, Query(description="The day, ISO week (Monday-Sunday) or month of `date`.")
    ],
    date: Annotated[IsoDay, Query(description="A day in the period, YYYY-MM-DD.")],
    entry_id: Annotated[
        Id | None, Query(description="One centre (registry entry); all when left out.")
    ] = None,
    service: Annotated[
        Code | None, Query(description="A catalogue service code; all when left out.")
    ] = None,
) -> DeskTimesOut:
    """Per centre and service: tickets served, no-shows and the no-show rate, waiting time
    (issued -> called) and service time (called -> ended) as mean, p50 and p90 - percentiles
    interpolated in fixed histogram buckets - and a total line per centre. Centres without
    tickets in the period are left out."""
    first, last = domain.period_days(period, date)
    days = await store.desk_days(runtime.redis, domain.days_between(first, last))
    by_entry = tickets.figures_by_entry_and_service(days, entry_id, service)
    entries = await store.entries(runtime.redis)
    centres = []
    for centre_id in sorted(by_entry):
        services = by_entry[centre_id]
        entry = entries.get(centre_id)
        centres.append(
            DeskCentre(
                entry_id=centre_id,
                name=entry.name if entry is not None else centre_id,
                district=entry.district if entry is not None else None,
                total=_line(None, tickets.total_of(services.values())),
                services=[_line(code, services[code]) for code in sorted(services)],
            )
        )
    return DeskTimesOut(
        period=period,
        first_day=first,
        last_day=last,
        entry_id=entry_id,
        service=service,
        centres=centres,
    )
