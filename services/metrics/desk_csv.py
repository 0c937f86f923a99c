"""The CSV form of a desk day file: its columns, and the reader that turns its lines into
tickets (each line checked like a JSON ticket, problems named by line)."""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError

from services.contracts.payloads.desk import MAX_TICKETS_PER_DAY
from services.metrics import domain
from services.metrics.desk_models import DeskDayTicketIn
from services.plumbing.exact_values import TEXT_CELLS

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
            tickets_in.append((name, DeskDayTicketIn.model_validate(cells, context=TEXT_CELLS)))
        except ValidationError as exc:
            problems.extend(
                (".".join([name, *(str(p) for p in error["loc"])]), error["msg"])
                for error in exc.errors(include_input=False)
            )
    return tickets_in, problems
