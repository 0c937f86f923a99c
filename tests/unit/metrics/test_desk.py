"""The desk routes' pure parts: the CSV day file, strict times and days, and which registry
entries take desk tickets."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.contracts import EntryKind, EntryStatus, HelpChannel
from services.metrics.desk_csv import CSV_COLUMNS, parse_day_csv
from services.metrics.desk_intake import accepts_desk_tickets
from services.metrics.desk_models import DeskTicketIn
from services.metrics.store import RegistryEntry

HEADER = ",".join(CSV_COLUMNS)
SERVED = (
    "q-1,passport,desk-04,staff-a1b2c3,2024-01-15T09:02:00+01:00,2024-01-15T09:14:00+01:00,"
    "2024-01-15T09:15:00+01:00,2024-01-15T09:23:00+01:00,served"
)
NO_SHOW = "q-2,tax,,,2024-01-15T10:00:00+01:00,,,2024-01-15T10:40:00+01:00,no_show"


def test_a_csv_day_file_reads_empty_cells_as_null() -> None:
    tickets, problems = parse_day_csv(f"{HEADER}\n{SERVED}\n{NO_SHOW}\n".encode())
    assert problems == []
    assert [name for name, _ in tickets] == ["line 2", "line 3"]
    no_show = tickets[1][1]
    assert (no_show.desk_id, no_show.called_at, no_show.served_at) == (None, None, None)


def test_a_csv_day_file_names_each_bad_line_and_field() -> None:
    bad_time = SERVED.replace("2024-01-15T09:23:00+01:00", "1705307000")
    raw = f"{HEADER}\n{SERVED}\nq-3,passport\n{bad_time}\n".encode()
    tickets, problems = parse_day_csv(raw)
    assert [name for name, _ in tickets] == ["line 2"]
    assert [field for field, _ in problems] == ["line 3", "line 4.ended_at"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\xff\xfe not utf-8", "body"),
        (b"ticket,service\n", "line 1"),
        (b"", "line 1"),
    ],
)
def test_a_file_that_is_not_a_day_file_is_refused_whole(raw: bytes, field: str) -> None:
    tickets, problems = parse_day_csv(raw)
    assert tickets == []
    assert [f for f, _ in problems] == [field]


def test_a_header_only_file_is_an_empty_day() -> None:
    assert parse_day_csv(f"{HEADER}\n".encode()) == ([], [])


@pytest.mark.parametrize(
    "issued_at", [1705305600, "1705305600", True, "2024-01-15T09:02:00", "0001-01-01T00:00:00Z"]
)
def test_a_ticket_time_is_iso_8601_with_offset_and_plausible(issued_at: object) -> None:
    body = {
        "service": "tax",
        "issued_at": issued_at,
        "ended_at": "2024-01-15T10:40:00+01:00",
        "outcome": "no_show",
    }
    with pytest.raises(ValidationError) as refused:
        DeskTicketIn.model_validate_json(json.dumps(body))
    assert [error["loc"] for error in refused.value.errors()] == [("issued_at",)]


def _entry(kind: EntryKind, *help_: HelpChannel) -> RegistryEntry:
    return RegistryEntry(kind=kind, district=None, status=EntryStatus.OPEN, staff_help=help_)


def test_centres_and_entries_with_in_person_help_take_desk_tickets() -> None:
    assert accepts_desk_tickets(_entry(EntryKind.CITIZEN_SERVICE_CENTRE))
    assert accepts_desk_tickets(_entry(EntryKind.LIBRARY, HelpChannel.IN_PERSON))
    assert not accepts_desk_tickets(_entry(EntryKind.KVIK_POINT, HelpChannel.VIDEO))
    assert not accepts_desk_tickets(_entry(EntryKind.DIGITAL))
