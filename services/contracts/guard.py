"""The personal-data guard: no Danish CPR number may travel in an event.

Events are kept on Kafka for days, copied into dead-letter topics and logs, and read by every
service; a CPR number in one of them is a personal-data breach that cannot be taken back. So
every string of every payload, and the envelope's own strings, are checked before an event is
built or accepted.

What counts as a CPR number is a deliberate trade-off: the guard prefers a false alarm to a
leak.

- **No modulus-11 check.** CPR numbers issued since 2007 need not satisfy modulus 11, so a
  check would let real numbers through. The price: any 10-digit run that starts with a valid
  ``ddmm`` is refused, e.g. a ten-digit string epoch timestamp or an account number. The contract
  carries times as ISO 8601 strings and ids as UUIDs or slugs, which never match.
- **Only a coarse date check** (dd 01-31, mm 01-12): "310299-1234" is refused although
  31 February does not exist. A stricter check buys little and is easy to get wrong.
- **Boundaries are letters and digits, not ``\\b``.** A run glued to a letter or digit
  ("abc0102031234", a hex group inside a UUID) is not matched, so UUIDs never trip the guard;
  a run after punctuation, a space or an underscore ("borger 010203-1234", "id_0102031234",
  "staff-0102031234") is. Nine- and eleven-digit runs, ISO dates ("2024-01-15") and times are
  never matched.
- **Not matched:** a space between the halves ("010203 1234") and replacement numbers whose
  day is raised by 60. Both are rare in machine-written values, and matching "ddmmyy nnnn"
  would refuse many ordinary pairs of numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Final
from uuid import UUID

from pydantic import BaseModel

CPR_PATTERN: Final = re.compile(
    r"""
    (?<![0-9A-Za-z])            # not the tail of a longer digit run, word or hex group
    (?:0[1-9]|[12][0-9]|3[01])  # dd 01-31
    (?:0[1-9]|1[0-2])           # mm 01-12
    [0-9]{2}                    # yy
    -?                          # ddmmyy-xxxx or ddmmyyxxxx
    [0-9]{4}                    # serial
    (?![0-9A-Za-z])             # not the head of a longer digit run or word
    """,
    re.VERBOSE,
)
"""A CPR number, ``ddmmyy-xxxx`` or ``ddmmyyxxxx``, standing on its own (see the module doc)."""


def find_cpr(value: object) -> str | None:
    """Return the first CPR-looking string inside ``value``, or ``None`` if there is none.

    Walks strings, the keys and values of mappings, lists, tuples, sets and the fields of
    pydantic models, to any depth. Other values (numbers, dates, UUIDs) cannot hold a CPR number
    as the contract writes them and are skipped.

    The result is the matched text itself: never put it in a log line or an error message.
    """
    # Every payload is walked on every validation, so the common exact types are dispatched
    # first by type; the isinstance chain below (unchanged) decides everything else.
    kind = type(value)
    if kind is str:
        return _search(value)  # type: ignore[arg-type]
    if kind in _NOTHING_INSIDE:
        return None
    if kind in _PLAIN_COLLECTIONS:
        return _first(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        return _search(value)
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        held = value.__dict__
        if len(held) == len(fields):
            # A built model holds exactly its fields' values in __dict__, in field order: read
            # there without an attribute lookup per field.
            return _first(held.values())
        return _first(getattr(value, name) for name in fields)
    if isinstance(value, Mapping):
        return _first(item for pair in value.items() for item in pair)
    if isinstance(value, list | tuple | set | frozenset):
        return _first(value)
    return None


_NOTHING_INSIDE: Final = frozenset(
    {type(None), bool, int, float, dt.datetime, dt.date, dt.time, dt.timedelta, UUID}
)
_PLAIN_COLLECTIONS: Final = frozenset({list, tuple, set, frozenset})


def _search(text: str) -> str | None:
    match = CPR_PATTERN.search(text)
    return match.group(0) if match else None


def _first(values: Iterable[object]) -> str | None:
    for item in values:
        # Strings are most of what a payload holds: searched here without a call per item.
        found = _search(item) if type(item) is str else find_cpr(item)
        if found is not None:
            return found
    return None
