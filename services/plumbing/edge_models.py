"""The base of the pydantic models a service parses at its HTTP edge: closed, taking input only
as it is written (no ``true`` for a count, no number for a date: services/plumbing/exact_values.py),
and with the CPR guard built in.

Every value a client can send is checked by the same guard the event contract uses
(:data:`services.contracts.guard.CPR_PATTERN`), when the body is parsed - before any use case
runs, so a refused value is never stored, not even in a record that becomes an event only later
(a streamed session's steps, a heartbeat's software version). Building the guard into the base
class, rather than into each field's type, means a field added later is guarded without anyone
remembering to.

The refusal is a pydantic error of type ``personal_data`` at the offending value's own location
(``body.steps[3].code``), so FastAPI answers 422 naming the field; the value itself is never
put into the error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.contracts.guard import CPR_PATTERN
from services.plumbing.exact_values import lax_values

PERSONAL_DATA = "personal_data"
"""The pydantic error type of a refused CPR-shaped value (the contract's guard uses it too)."""

EXACT_INPUT = "exact_input"
"""The pydantic error type of a value only a lax conversion would take (``false`` for a count,
a number for a date; services/plumbing/exact_values.py)."""

_MESSAGE = "looks like a CPR number; personal data is not accepted"

Location = tuple[int | str, ...]


class EdgeModel(BaseModel):
    """A request body (or part of one): unknown fields are refused, refused input never appears
    in an error, and no string anywhere in it may look like a CPR number."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    __exact_input__: ClassVar[bool] = True
    """Marks a model that refuses lax input itself (see :func:`_refuse_lax_values`)."""

    # Defined before the CPR guard: pydantic runs the last "before" validator first, and the
    # CPR refusal is the answer whatever else is wrong.
    @model_validator(mode="before")
    @classmethod
    def _refuse_lax_values(cls, data: Any, info: ValidationInfo) -> Any:
        # No bool for a count, no number for a date (services/plumbing/exact_values.py), at the
        # value's own location, before any field converts it.
        if isinstance(data, Mapping):
            text = bool(info.context and info.context.get("text_cells"))
            found = lax_values(cls, data, text=text)
            if found:
                raise ValidationError.from_exception_data(
                    cls.__name__,
                    [
                        InitErrorDetails(
                            type=PydanticCustomError(EXACT_INPUT, message), loc=loc, input=None
                        )
                        for loc, message in found
                    ],
                )
        return data

    @model_validator(mode="before")
    @classmethod
    def _refuse_personal_data_as_sent(cls, data: Any) -> Any:
        # The body as the client sent it, before any field converts it: a CPR-shaped string
        # sent for a time ("0102031234" is a valid Unix timestamp to pydantic) or a number
        # would no longer be a string when the check below runs, yet would still carry the
        # number. Checked first, so the refusal is the answer whatever else is wrong.
        if isinstance(data, Mapping):
            _refuse(cls.__name__, list(cpr_locations(data)))
        return data

    @model_validator(mode="after")
    def _refuse_personal_data(self) -> Self:
        _refuse(
            type(self).__name__,
            [loc for name, value in self.__dict__.items() for loc in cpr_locations(value, (name,))],
        )
        return self


def _refuse(title: str, found: list[Location]) -> None:
    """Raise the ``personal_data`` error at each location in ``found``, if there is any."""
    if found:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError(PERSONAL_DATA, _MESSAGE), loc=loc, input=None
                )
                for loc in found
            ],
        )


def cpr_locations(value: object, loc: Location = ()) -> Iterator[Location]:
    """Where inside ``value`` a string looks like a CPR number (mapping keys count too).

    A nested :class:`EdgeModel` is skipped: it checked itself when it was built, and its errors
    reach the caller with their full location.
    """
    if isinstance(value, str):
        if CPR_PATTERN.search(value):
            yield loc
    elif isinstance(value, EdgeModel):
        return
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from cpr_locations(getattr(value, name), (*loc, name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and CPR_PATTERN.search(key):
                yield loc
            yield from cpr_locations(item, (*loc, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from cpr_locations(item, (*loc, index))
