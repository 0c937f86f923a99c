"""Exact input at every door: for every write route of every service (the table of valid
bodies in test_cpr_property.py), ``true`` put into any number field and a number put into any
date or time field is refused with 422 naming that field, and nothing is stored or staged.
CSV files are text: there ``true`` in a number cell and ``0`` in a date cell are refused, while
the valid files (numbers written in digits) keep being taken (the service tests send them);
a date query parameter (the CSV intake's ``day``) refuses ``0`` too.

Number fields are found by walking the body (a JSON number), date fields by their ISO shape, so
a field added to a body in the table is covered too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.security.test_cpr_property import (
    Path,
    Target,
    Write,
    _named,
    _problems,
    target,
    writes,
)

pytestmark = pytest.mark.integration

__all__ = ["target"]  # the running service, a fixture of the CPR property test

_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
TEXT_WRITTEN_IN_DIGITS = {"postal_code"}
"""CSV columns of text that happens to be digits (not a number field)."""
NUMBERS_FOR_A_DATE = (0, 1_765_000_000)
"""The Unix epoch and a Unix time in 2025: lax parsing reads both as a day or a time."""


def _lax_values(write: Write) -> Iterator[tuple[Path, Any]]:
    """(where, what) for every lax value to try in ``write``'s body."""
    if write.csv:
        header = write.body[0]
        for row in range(1, len(write.body)):
            for column, cell in enumerate(write.body[row]):
                if header[column] in TEXT_WRITTEN_IN_DIGITS:
                    continue
                if _DIGITS.fullmatch(cell):
                    yield (row, column), "true"
                elif _ISO.match(cell):
                    yield (row, column), "0"
        return
    yield from _json_values(write.body, ())


def _json_values(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, True
    elif isinstance(value, str) and _ISO.match(value):
        for number in NUMBERS_FOR_A_DATE:
            yield path, number
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_values(item, (*path, index))


def test_every_route_of_the_table_has_a_value_to_try_or_is_listed() -> None:
    # A route with no number and no date in its body tests nothing here; they are named, so a
    # body that gains one is not forgotten.
    without = {
        (name, w.method, w.template, w.params.get("kind", ""))
        for name, table in writes().items()
        for w in table
        if not list(_lax_values(w))
    }
    assert without == {
        ("registry", "POST", "/services", ""),
        ("registry", "PUT", "/services/{code}", ""),
        # The entry CSV: its weekly hours cell ("0 10:00-19:00") is text, not a number.
        ("registry", "POST", "/import", "entry"),
        ("kvik", "POST", "/kiosks", ""),
        ("kvik", "POST", "/kiosks/{kiosk_id}/heartbeat", ""),
        ("kvik", "POST", "/help", ""),
        ("mobile", "POST", "/visits/{visit_id}/cancel", ""),
        ("mobile", "POST", "/visits/{visit_id}/bookings", ""),
        ("mobile", "PATCH", "/series/{series_id}/occurrences/{day}", ""),
        ("mobile", "POST", "/series/{series_id}/occurrences/{day}/cancel", ""),
    }


async def test_true_for_a_number_or_a_number_for_a_date_is_refused_naming_the_field(
    target: Target,
) -> None:
    wrong: list[str] = []
    tried = 0
    for write in writes()[target.name]:
        token = target.device if write.device else target.person
        for path, value in _lax_values(write):
            tried += 1
            response = await write.send(target.client, write.with_value(path, value), token)
            status, fields = _problems(response, write.batch)
            expected = write.names(path)
            if status != 422 or not _named(expected, fields):
                wrong.append(
                    f"{write.method} {write.path} {expected}={value!r}: "
                    f"{response.status_code} {fields}"
                )
        await _nothing_stored(target, write, wrong)
    assert tried, f"{target.name}: nothing to try"
    assert not wrong, f"{target.name}:\n" + "\n".join(wrong)


async def test_a_number_for_a_date_query_parameter_is_refused_naming_it(target: Target) -> None:
    with_dates = [
        (write, name)
        for write in writes()[target.name]
        for name, value in write.params.items()
        if _ISO.fullmatch(value)
    ]
    if target.name != "metrics":
        assert not with_dates
        return
    assert with_dates, "the CSV intake takes its day as a query parameter"
    for write, name in with_dates:
        params = {**write.params, name: "0"}
        sent = Write(write.method, write.template, write.path, write.body, csv=True, params=params)
        response = await sent.send(target.client, write.body, target.person)
        status, fields = _problems(response, batch=False)
        assert (status, fields) == (422, [f"query.{name}"]), response.text
    wrong: list[str] = []
    await _nothing_stored(target, with_dates[0][0], wrong)
    assert not wrong


async def _nothing_stored(target: Target, write: Write, wrong: list[str]) -> None:
    state, staged_now = await target.state()
    if (state, staged_now) != (target.before, target.staged):
        changed = sorted(k.decode() for k in state.keys() ^ target.before.keys())
        wrong.append(f"{write.method} {write.path}: something was stored ({changed})")
