"""External intake: daily contact counts from the digital self-service platform and the
telephone contact centre, as JSON or CSV. Every line is validated and named in errors; nothing
is half-applied; each line becomes a ``count.reported`` event, so the log is the one record.
Needs ``metrics:ingest``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, ValidationError

from services.contracts import ContactSource, CountReported, District, EventType, new_event
from services.contracts.payloads.base import Code
from services.contracts.payloads.contacts import SOURCE_CHANNEL
from services.metrics import domain
from services.metrics.deps import Day, RuntimeDep, StoreDep
from services.plumbing.auth import MetricsIngester
from services.plumbing.edge_models import EdgeModel
from services.plumbing.exact_values import TEXT_CELLS
from services.plumbing.outbox import Outbox
from services.plumbing.problems import FieldProblem, problem_responses, validation_problem

router = APIRouter(tags=["intake"])

INTAKE_PROBLEMS = problem_responses(401, 403, 413, 422)
MAX_INTAKE_LINES = 10_000


class IntakeLineIn(EdgeModel):
    """One day's contacts of one district and service (also each row of the CSV intake, so its
    cells pass the same CPR guard)."""

    district: District
    service: Code
    self_service: int = Field(ge=0, le=domain.MAX_DAILY_COUNT)
    assisted: int = Field(ge=0, le=domain.MAX_DAILY_COUNT)


class IntakeIn(EdgeModel):
    """Daily counts from a channel system outside kanalhub; replaces earlier figures."""

    source: ContactSource
    day: Day = Field(description="The Copenhagen day the contacts happened on.")
    items: list[IntakeLineIn] = Field(min_length=1, max_length=MAX_INTAKE_LINES)


class IntakeAccepted(BaseModel):
    """An intake taken in: its lines are published as count.reported events."""

    lines: int


# -- routes ---------------------------------------------------------------------------------


@router.post(
    "/intake",
    status_code=202,
    response_model=IntakeAccepted,
    responses=INTAKE_PROBLEMS,
    summary="Take in a day's contact counts from the digital platform or the contact centre",
)
async def post_intake(
    intake: IntakeIn, ingester: MetricsIngester, runtime: RuntimeDep, store: StoreDep
) -> IntakeAccepted:
    """Validate every line, then publish one ``count.reported`` event per line (all or none).

    A line replaces the earlier figure with the same day, source, district and service, so the
    same intake sent again changes nothing and a corrected one replaces. The share reflects it
    once the service has consumed its own events (usually within a second).
    """
    del ingester
    lines = [
        domain.IntakeLine(item.district, item.service, item.self_service, item.assisted)
        for item in intake.items
    ]
    catalogue = await store.catalogue(runtime.redis)
    refuse_if_any(
        domain.intake_problems(intake.day, lines, domain.today_in_copenhagen(), catalogue)
    )
    await publish_reports(runtime.outbox, runtime.settings.source, intake.source, intake.day, lines)
    return IntakeAccepted(lines=len(lines))


CSV_COLUMNS = ("district", "service", "self_service", "assisted")


@router.post(
    "/intake/csv",
    status_code=202,
    response_model=IntakeAccepted,
    responses=INTAKE_PROBLEMS,
    summary="Take in a day's contact counts as a CSV file",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "district,service,self_service,assisted\nvalby,passport,90,10\n",
                }
            },
        }
    },
)
async def post_intake_csv(
    request: Request,
    ingester: MetricsIngester,
    runtime: RuntimeDep,
    store: StoreDep,
    source: Annotated[ContactSource, Query(description="The system the counts come from.")],
    day: Annotated[Day, Query(description="The Copenhagen day the contacts happened on.")],
) -> IntakeAccepted:
    """The same intake as ``POST /intake``, as UTF-8 CSV with the header
    ``district,service,self_service,assisted``; errors name the line of the file."""
    del ingester
    numbered, problems = parse_intake_csv(await request.body())
    lines = [line for _, line in numbered]
    problems += domain.intake_problems(
        day,
        lines,
        domain.today_in_copenhagen(),
        await store.catalogue(runtime.redis),
        lambda i: domain.csv_line_name(numbered[i][0]),
        "query.day",
    )
    refuse_if_any(problems)
    await publish_reports(runtime.outbox, runtime.settings.source, source, day, lines)
    return IntakeAccepted(lines=len(lines))


def parse_intake_csv(
    raw: bytes,
) -> tuple[list[tuple[int, domain.IntakeLine]], list[tuple[str, str]]]:
    """The valid lines of a CSV intake with their index after the header, and
    ``(field, message)`` for everything that is not valid (named by the line of the file)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [("body", "The file is not UTF-8 text")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        return [], [("body", f"The file is not valid CSV: {exc}")]
    if not rows or tuple(cell.strip() for cell in rows[0]) != CSV_COLUMNS:
        return [], [("line 1", f"The header must be: {','.join(CSV_COLUMNS)}")]
    body = rows[1:]
    if not body:
        return [], [("body", "The file has no lines after the header")]
    if len(body) > MAX_INTAKE_LINES:
        return [], [("body", f"The file has more than {MAX_INTAKE_LINES} lines")]
    lines: list[tuple[int, domain.IntakeLine]] = []
    problems: list[tuple[str, str]] = []
    for index, row in enumerate(body):
        name = domain.csv_line_name(index)
        if len(row) != len(CSV_COLUMNS):
            problems.append((name, f"Expected {len(CSV_COLUMNS)} columns, found {len(row)}"))
            continue
        try:
            item = IntakeLineIn.model_validate(
                dict(zip(CSV_COLUMNS, (cell.strip() for cell in row), strict=True)),
                context=TEXT_CELLS,
            )
        except ValidationError as exc:
            problems.extend(
                (f"{name}.{'.'.join(str(p) for p in error['loc'])}", error["msg"])
                for error in exc.errors(include_input=False)
            )
            continue
        line = domain.IntakeLine(item.district, item.service, item.self_service, item.assisted)
        lines.append((index, line))
    return lines, problems


def refuse_if_any(problems: Sequence[tuple[str, str]]) -> None:
    """Refuse a whole intake with one 422 naming every ``(field, message)`` problem."""
    if problems:
        count = len(problems)
        raise validation_problem(
            [FieldProblem(field=f, message=m) for f, m in problems],
            detail=f"{count} problem{'' if count == 1 else 's'} found; nothing was taken in.",
        )


async def publish_reports(
    outbox: Outbox,
    event_source: str,
    source: ContactSource,
    day: dt.date,
    lines: list[domain.IntakeLine],
) -> None:
    """Stage one count.reported event per line in the outbox, in one atomic step."""
    events = [
        new_event(
            EventType.METRICS_COUNT_REPORTED,
            CountReported(
                source=source,
                day=day,
                district=line.district,
                service=line.service,
                channel=SOURCE_CHANNEL[source],
                self_service=line.self_service,
                assisted=line.assisted,
            ),
            source=event_source,
        )
        for line in lines
    ]
    await outbox.publish(*events)
