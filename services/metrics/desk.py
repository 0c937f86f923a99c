"""The desk's HTTP routes (decision 0004): the live feed (one finished ticket per request), the
day file per entry (JSON or CSV, replace semantics), and the waiting and service times per
centre and service.

Writes need ``metrics:desk``; the taking in is in ``desk_intake`` (bodies in ``desk_models``,
the CSV reader in ``desk_csv``), the figures in ``desk_figures``; the counting is in ``events``
and ``tickets``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.contracts import District
from services.contracts.payloads.base import Code, Id
from services.metrics import desk_figures, desk_intake, domain, tickets
from services.metrics.deps import RuntimeDep, SettingsDep, StoreDep
from services.metrics.desk_csv import CSV_COLUMNS, parse_day_csv
from services.metrics.desk_models import (
    DeskCentre,
    DeskDayAccepted,
    DeskDayIn,
    DeskLine,
    DeskTicketAccepted,
    DeskTicketIn,
    DeskTimesOut,
    IsoDay,
    TimeFigures,
)
from services.plumbing.auth import DeskReporter, MetricsReader
from services.plumbing.problems import FieldProblem, Problem, problem_responses


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
    status, body = await desk_intake.take_ticket(
        runtime, store, settings, entry_id, ticket_id, ticket
    )
    return Response(body, status_code=status, media_type="application/json")


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
    return await desk_intake.take_day(
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
    return await desk_intake.take_day(
        runtime, store, settings, entry_id, day, (district, "query.district"), numbered, problems
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
    centres = await desk_figures.centres(store, runtime.redis, first, last, entry_id, service)
    return DeskTimesOut(
        period=period,
        first_day=first,
        last_day=last,
        entry_id=entry_id,
        service=service,
        centres=[
            DeskCentre(
                entry_id=centre.entry_id,
                name=centre.name,
                district=centre.district,
                total=_line(None, centre.total),
                services=[_line(code, figures) for code, figures in centre.services],
            )
            for centre in centres
        ],
    )
