"""Reading CSV intake files (services/metrics/intake.py, parse_intake_csv)."""

from __future__ import annotations

from services.contracts import District
from services.metrics.domain import IntakeLine
from services.metrics.intake import parse_intake_csv

HEADER = "district,service,self_service,assisted\n"


def test_a_valid_file_gives_its_lines_numbered_after_the_header() -> None:
    lines, problems = parse_intake_csv((HEADER + "valby,passport,90,10\n").encode())
    assert problems == []
    assert lines == [(0, IntakeLine(District.VALBY, "passport", 90, 10))]


def test_a_byte_order_mark_and_blanks_around_cells_are_accepted() -> None:
    lines, problems = parse_intake_csv(("\ufeff" + HEADER + "valby, passport ,1,2\n").encode())
    assert (problems, len(lines)) == ([], 1)


def test_bad_lines_are_named_by_their_line_in_the_file() -> None:
    text = HEADER + "valby,passport,1,1\natlantis,passport,1,1\nvalby,tax,1\nvalby,tax,-1,2\n"
    _, problems = parse_intake_csv(text.encode())
    assert [field for field, _ in problems] == [
        "line 3.district",
        "line 4",
        "line 5.self_service",
    ]


def test_a_wrong_header_is_refused() -> None:
    _, problems = parse_intake_csv(b"district,service,count\nvalby,passport,1\n")
    assert [field for field, _ in problems] == ["line 1"]


def test_a_file_that_is_not_utf8_is_refused() -> None:
    _, problems = parse_intake_csv(HEADER.encode() + b"valby,pas\xffsport,1,1\n")
    assert problems == [("body", "The file is not UTF-8 text")]


def test_a_file_with_only_a_header_is_refused() -> None:
    _, problems = parse_intake_csv(HEADER.encode())
    assert [field for field, _ in problems] == ["body"]
