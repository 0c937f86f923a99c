"""Input taken as it is written, never guessed: no ``true``/``false`` for a count, no number for
a date or a time, and text read as a number or a day only when it is written plainly.

pydantic's lax mode converts on its own: ``false`` is the count 0, ``0`` (or ``"0"``) is the
day 1970-01-01, ``"1_000"`` and ``" 5"`` are numbers. A counting system must not guess, and its
strict mode cannot be switched on wholesale: FastAPI validates a body as Python objects, in
which strict mode refuses an ISO string for a date and a string for an enum.

Two tools, one for each way input arrives:

- JSON bodies: :func:`lax_values` walks a body as sent against the declared fields (nested
  lists, mappings and contract models too) and names every value a lax conversion would have
  changed. :class:`services.plumbing.edge_models.EdgeModel` calls it before any field is
  converted, so every body field is covered, a field added later too. Values read from text
  (CSV cells) are validated with ``context=TEXT_CELLS``: there a number is written in digits.
- Query and path parameters are always text: :data:`QueryInt`, :data:`QueryFloat`,
  :data:`QueryDate` and :data:`QueryDatetime` take only the plain written form.

A field whose type brings its own input validator (``BeforeValidator``/``PlainValidator``/
``WrapValidator``, e.g. the metrics service's ``Day``) decides for itself and is not walked.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel, BeforeValidator, PlainValidator, WrapValidator
from pydantic_core import PydanticCustomError

Location = tuple[int | str, ...]
Kind = Literal["int", "float", "bool", "date", "datetime", "time"]

TEXT_CELLS: Final[Mapping[str, bool]] = {"text_cells": True}
"""The validation context of values read from text (CSV cells): there a number is written in
digits (``"12"``, ``"55.66"``) and is read, exactly."""

_WHOLE: Final = re.compile(r"-?[0-9]+")
_DECIMAL: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}\S*")
_CLOCK: Final = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?")

_MESSAGES: Final[dict[Kind, str]] = {
    "int": "Expected a whole number",
    "float": "Expected a number",
    "bool": "Expected true or false",
    "date": "Expected a calendar day as text, YYYY-MM-DD",
    "datetime": "Expected a time as ISO 8601 text, e.g. 2026-12-01T09:30:00+01:00",
    "time": "Expected a clock time as text, HH:MM",
}
_TEXT_FORMS: Final[dict[Kind, str]] = {
    "int": "Expected a whole number written in digits, e.g. 12",
    "float": "Expected a number written in digits, e.g. 55.66",
}

_DATE_TYPES: Final = (pydantic.PastDate, pydantic.FutureDate)
_DATETIME_TYPES: Final = (
    pydantic.AwareDatetime,
    pydantic.NaiveDatetime,
    pydantic.PastDatetime,
    pydantic.FutureDatetime,
)
_OWN_INPUT: Final = (BeforeValidator, PlainValidator, WrapValidator)
_SEQUENCES: Final = (list, tuple, set, frozenset, Sequence)


def _kind(annotation: Any) -> Kind | None:
    """The kind of a leaf type that lax mode converts into, or None."""
    if not isinstance(annotation, type) or issubclass(annotation, Enum):
        return None
    if issubclass(annotation, bool):
        return "bool"
    if issubclass(annotation, int):
        return "int"
    if issubclass(annotation, float):
        return "float"
    if issubclass(annotation, dt.datetime) or annotation in _DATETIME_TYPES:
        return "datetime"
    if issubclass(annotation, dt.date) or annotation in _DATE_TYPES:
        return "date"
    if issubclass(annotation, dt.time):
        return "time"
    return None


def refusal(kind: Kind, value: object, *, text: bool) -> str | None:
    """Why ``value`` is not an exact input for a field of ``kind``, or None when it is.

    Values of other shapes (null, a list ...) are left to the field's own validation.
    """
    if kind == "bool":
        return None if isinstance(value, bool) or text else _bool_refusal(value)
    if kind in ("int", "float"):
        return _number_refusal(kind, value, text=text)
    if isinstance(value, bool | int | float):
        return f"{_MESSAGES[kind]}, not a number"
    if isinstance(value, str):
        pattern = {"date": _DAY, "datetime": _MOMENT, "time": _CLOCK}[kind]
        return None if pattern.fullmatch(value) else _MESSAGES[kind]
    return None


def _bool_refusal(value: object) -> str | None:
    return _MESSAGES["bool"] if isinstance(value, int | float | str) else None


def _number_refusal(kind: Kind, value: object, *, text: bool) -> str | None:
    if isinstance(value, bool):
        return f"{_MESSAGES[kind]}, not true or false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{_MESSAGES[kind]}, not {value}"
        return f"{_MESSAGES[kind]}, without a decimal point" if kind == "int" else None
    if isinstance(value, str):
        if not text:
            return f"{_MESSAGES[kind]}, not text"
        pattern = _WHOLE if kind == "int" else _DECIMAL
        return None if pattern.fullmatch(value) else _TEXT_FORMS[kind]
    return None


def lax_values(
    model: type[BaseModel], data: Mapping[str, Any], *, text: bool
) -> list[tuple[Location, str]]:
    """``(location, message)`` of every value in ``data`` (a body as sent, for ``model``) that
    only a lax conversion would take; ``text`` when the values were read from text (CSV).

    Nested models are walked too, but for those that run this check on their own input (edge
    models, marked ``__exact_input__``): their errors reach the caller with their location.
    """
    return list(_fields(model, data, (), text))


def _fields(
    model: type[BaseModel], data: Mapping[str, Any], loc: Location, text: bool
) -> Iterator[tuple[Location, str]]:
    for name, field in model.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        key = alias or field.alias or name
        if key not in data:
            continue
        if any(isinstance(item, _OWN_INPUT) for item in field.metadata):
            continue
        yield from _walk(field.annotation, data[key], (*loc, key), text)


def _walk(annotation: Any, value: Any, loc: Location, text: bool) -> Iterator[tuple[Location, str]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        if not any(isinstance(item, _OWN_INPUT) for item in metadata):
            yield from _walk(inner, value, loc, text)
        return
    if origin in (Union, types.UnionType):
        if value is None:
            return
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            yield from _walk(members[0], value, loc, text)
        elif {_kind(m) for m in members} <= {"int", "float"}:
            # ``int | float`` (a figure that may be whole): a number is exact, true is not.
            message = refusal("float", value, text=text)
            if message is not None:
                yield loc, message
        return
    if origin is not None and isinstance(origin, type):
        yield from _container(origin, get_args(annotation), value, loc, text)
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(value, Mapping) and not _checks_itself(annotation):
            yield from _fields(annotation, value, loc, text)
        return
    kind = _kind(annotation)
    if kind is not None:
        message = refusal(kind, value, text=text)
        if message is not None:
            yield loc, message


def _container(
    origin: type, args: tuple[Any, ...], value: Any, loc: Location, text: bool
) -> Iterator[tuple[Location, str]]:
    if issubclass(origin, Mapping) and isinstance(value, Mapping) and len(args) == 2:
        for key, item in value.items():
            yield from _walk(args[1], item, (*loc, str(key)), text)
    elif issubclass(origin, _SEQUENCES) and isinstance(value, list) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            for index, (item_type, item) in enumerate(zip(args, value, strict=False)):
                yield from _walk(item_type, item, (*loc, index), text)
            return
        for index, item in enumerate(value):
            yield from _walk(args[0], item, (*loc, index), text)


def _checks_itself(model: type[BaseModel]) -> bool:
    """Whether ``model`` runs this check on its own input (an edge model does)."""
    return bool(getattr(model, "__exact_input__", False))


# -- query and path parameters -----------------------------------------------------------------


def _exact(kind: Kind) -> Any:
    """A before-validator taking a parameter's text only in its plain written form (and a value
    of the type itself, as a caller inside the service passes it)."""

    def check(value: object) -> object:
        if (
            kind in ("int", "float")
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            return value
        if kind in ("date", "datetime") and isinstance(value, dt.date):
            return value
        message = refusal(kind, value, text=True)
        if message is not None or not isinstance(value, str):
            raise PydanticCustomError(f"{kind}_type", message or _MESSAGES[kind])
        return value

    return BeforeValidator(check)


QueryInt = Annotated[int, _exact("int")]
"""A whole number in a query or path parameter: digits with an optional minus, nothing else
(not ``1_000``, ``5.0`` or `` 5``)."""
QueryFloat = Annotated[float, _exact("float")]
"""A number in a query or path parameter: ``55.66``, ``-3``; not ``1e3``, ``nan`` or ``inf``."""
QueryDate = Annotated[dt.date, _exact("date")]
"""A calendar day in a query or path parameter: ``YYYY-MM-DD``, never a number (``0`` would
read as 1970-01-01)."""
QueryDatetime = Annotated[dt.datetime, _exact("datetime")]
"""A time in a query parameter: ISO 8601 from the date to at least the minute, never a number
of seconds."""
