"""The base of every payload model, and the constrained value types payloads are built from."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, ClassVar, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.contracts.guard import find_cpr

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")]
"""An opaque id (a UUID or a slug such as ``kiosk-valby-01``); no spaces, no colons."""

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A machine code from a catalogue, e.g. the service ``change_of_address`` or a step code."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S(?:.*\S)?$")]
"""The public name of a site, entry or service: one line, no surrounding blanks."""

StaffId = Annotated[str, StringConstraints(pattern=r"^staff-[a-z0-9]{6,32}$")]
"""A pseudonymous staff id; a person's name or employee number never appears in events."""

ClockTime = Annotated[str, StringConstraints(pattern=r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")]
"""A local Copenhagen wall-clock time, ``HH:MM``."""

Version = Annotated[int, Field(ge=1)]
"""The aggregate's version, raised by one on every change, so consumers can drop stale state."""

HashableT = TypeVar("HashableT", bound=Hashable)


def unique(values: tuple[HashableT, ...]) -> tuple[HashableT, ...]:
    """Refuse a tuple that names the same item twice."""
    if len(set(values)) != len(values):
        raise ValueError("items must be unique")
    return values


Codes = Annotated[
    tuple[Code, ...], AfterValidator(unique), Field(json_schema_extra={"uniqueItems": True})
]
"""A set of codes, written as an array without duplicates."""

NonEmptyCodes = Annotated[
    tuple[Code, ...],
    # min_length must come before the validator, or pydantic puts it in the schema as minLength.
    Field(min_length=1),
    AfterValidator(unique),
    Field(json_schema_extra={"uniqueItems": True}),
]
"""At least one code, written as an array without duplicates."""

StaffIds = Annotated[
    tuple[StaffId, ...], AfterValidator(unique), Field(json_schema_extra={"uniqueItems": True})
]
"""The pseudonymous staff ids on a task, without duplicates."""


class ContractModel(BaseModel):
    """Every model in the contract: closed, immutable and free of CPR numbers.

    ``extra="forbid"`` makes a producer's typo or a field from a newer version fail loudly
    instead of being dropped. ``hide_input_in_errors`` keeps refused values (possibly personal
    data) out of error messages, which end up in logs and dead-letter headers.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    @model_validator(mode="after")
    def _refuse_personal_data(self) -> Self:
        for name in type(self).model_fields:
            if find_cpr(getattr(self, name)) is not None:
                # PydanticCustomError is a ValueError whose type ("personal_data") survives into
                # the ValidationError, so decoders can tell this failure from any other.
                raise PydanticCustomError(
                    "personal_data",
                    "field '{field}' looks like a CPR number; events must not carry personal data",
                    {"field": name},
                )
        return self


class Payload(ContractModel):
    """The ``data`` of one event type.

    ``key_fields`` names the fields that make up the aggregate id, which is the event's
    ``subject`` and its Kafka key, so all events about one aggregate stay in order on one
    partition.
    """

    key_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def aggregate_id(self) -> str:
        """The id of the aggregate this event is about: the envelope's subject and Kafka key."""
        if not self.key_fields:
            raise TypeError(f"{type(self).__name__} does not name its key_fields")
        return ":".join(str(getattr(self, name)) for name in self.key_fields)
