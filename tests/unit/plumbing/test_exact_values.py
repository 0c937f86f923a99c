"""Exact input: an edge model refuses what only a lax conversion would take (``true`` for a
count, a number for a date), at the value's own location and at any depth; text read from a
CSV file is read as written; query and path parameter types take only the plain written form."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from services.plumbing.edge_models import EXACT_INPUT, EdgeModel
from services.plumbing.exact_values import (
    TEXT_CELLS,
    QueryDate,
    QueryDatetime,
    QueryFloat,
    QueryInt,
)


class Opening(BaseModel):
    """A value type of the event contract (not an edge model), nested in a body."""

    weekday: int
    date: dt.date | None = None


class Step(EdgeModel):
    seq: int


class Body(EdgeModel):
    count: int = Field(default=0, ge=0)
    latitude: float = 0.0
    at: AwareDatetime | None = None
    day: dt.date | None = None
    steps: list[Step] = Field(default_factory=list)
    weekly: tuple[Opening, ...] = ()
    by_name: dict[str, int] = Field(default_factory=dict)
    figure: int | float | None = None
    flag: bool = False


def _refused(data: dict[str, Any], context: Any = None) -> list[tuple[str, tuple[Any, ...]]]:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(data, context=context)
    return [(e["type"], e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"count": False}, ("count",)),
        ({"count": True}, ("count",)),
        ({"count": 5.0}, ("count",)),
        ({"count": "5"}, ("count",)),
        ({"latitude": True}, ("latitude",)),
        ({"latitude": "55.6"}, ("latitude",)),
        ({"latitude": float("nan")}, ("latitude",)),
        ({"at": 0}, ("at",)),
        ({"at": "0"}, ("at",)),
        ({"at": "1765000000"}, ("at",)),
        ({"day": 0}, ("day",)),
        ({"day": "0"}, ("day",)),
        ({"day": "2026-12-01T00:00:00"}, ("day",)),
        ({"steps": [{"seq": 1}, {"seq": True}]}, ("steps", 1, "seq")),
        ({"weekly": [{"weekday": True}]}, ("weekly", 0, "weekday")),
        ({"weekly": [{"weekday": 1, "date": 0}]}, ("weekly", 0, "date")),
        ({"by_name": {"a": 1, "b": False}}, ("by_name", "b")),
        ({"figure": True}, ("figure",)),
        ({"flag": 1}, ("flag",)),
    ],
)
def test_a_lax_value_is_refused_at_its_own_location(
    data: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    assert _refused(data) == [(EXACT_INPUT, loc)]


def test_exact_values_pass_and_keep_their_meaning() -> None:
    body = Body.model_validate(
        {
            "count": 3,
            "latitude": 55,
            "at": "2026-12-01T09:30:00+01:00",
            "day": "2026-12-01",
            "steps": [{"seq": 0}],
            "weekly": [{"weekday": 0, "date": "2026-12-24"}],
            "by_name": {"a": 2},
            "figure": 1.5,
            "flag": True,
        }
    )
    assert (body.count, body.latitude, body.day, body.weekly[0].weekday) == (
        3,
        55.0,
        dt.date(2026, 12, 1),
        0,
    )


def test_every_lax_value_is_named_at_once() -> None:
    assert _refused({"count": True, "day": 0}) == [
        (EXACT_INPUT, ("count",)),
        (EXACT_INPUT, ("day",)),
    ]


def test_csv_cells_written_in_digits_are_read() -> None:
    body = Body.model_validate(
        {"count": "12", "latitude": "55.66", "weekly": [{"weekday": "3"}]}, context=TEXT_CELLS
    )
    assert (body.count, body.latitude, body.weekly[0].weekday) == (12, 55.66, 3)


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"count": "true"}, ("count",)),
        ({"count": "1_000"}, ("count",)),
        ({"count": " 5"}, ("count",)),
        ({"count": "5.0"}, ("count",)),
        ({"latitude": "1e3"}, ("latitude",)),
        ({"latitude": "nan"}, ("latitude",)),
        ({"day": "0"}, ("day",)),
    ],
)
def test_csv_cells_are_read_only_as_written(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert _refused(data, TEXT_CELLS) == [(EXACT_INPUT, loc)]


@pytest.mark.parametrize(
    ("annotation", "text", "expected"),
    [
        (QueryInt, "12", 12),
        (QueryInt, "-3", -3),
        (QueryFloat, "55.66", 55.66),
        (QueryFloat, "12", 12.0),
        (QueryDate, "2026-12-01", dt.date(2026, 12, 1)),
        (QueryDatetime, "2026-12-01T09:30", dt.datetime(2026, 12, 1, 9, 30)),
    ],
)
def test_a_query_parameter_in_its_plain_form_is_read(
    annotation: Any, text: str, expected: object
) -> None:
    assert TypeAdapter(annotation).validate_python(text) == expected


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (QueryInt, "5.0"),
        (QueryInt, "1_000"),
        (QueryInt, " 5"),
        (QueryInt, "+5"),
        (QueryInt, "true"),
        (QueryFloat, "1e3"),
        (QueryFloat, "nan"),
        (QueryFloat, "inf"),
        (QueryDate, "0"),
        (QueryDate, "20261201"),
        (QueryDate, "2026-12-01T00:00:00"),
        (QueryDatetime, "0"),
        (QueryDatetime, "1765000000"),
        (QueryDatetime, "2026-12-01"),
    ],
)
def test_a_query_parameter_in_any_other_form_is_refused(annotation: Any, text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(annotation).validate_python(text)
