"""Payloads the registry service publishes on ``kanalhub.registry.v1``.

Upserts carry the aggregate's full state (event-carried state transfer): a consumer keeps its own
copy of sites, entries and services from these events alone and never asks the registry.
Consumers keep the highest ``version`` they have seen and drop anything older.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from services.contracts.payloads.base import (
    ClockTime,
    Code,
    Codes,
    ContractModel,
    Id,
    Name,
    Payload,
    Version,
    unique,
)
from services.contracts.reference import (
    Administration,
    Coverage,
    District,
    EntryKind,
    EntryStatus,
    EntryType,
    HelpChannel,
)

StaffHelp = Literal[HelpChannel.IN_PERSON, HelpChannel.PHONE, HelpChannel.VIDEO]
"""A way staff can help citizens at an entry: at the counter (in person), by phone or video."""


class Address(ContractModel):
    """The postal address of a site (a public building, never a citizen's address)."""

    street: Name
    """Street and number, e.g. "Islands Brygge 37"."""
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
    """The four-digit Danish postal code."""
    city: Name
    """The postal district, e.g. "København S"."""


class WeeklyOpening(ContractModel):
    """One weekly opening interval, in local Copenhagen time."""

    weekday: Annotated[int, Field(ge=0, le=6)]
    """0 = Monday ... 6 = Sunday, as Python's ``date.weekday()``."""
    opens: ClockTime
    closes: ClockTime
    """Later than ``opens``; an interval never runs past midnight."""

    @model_validator(mode="after")
    def _closes_after_opening(self) -> Self:
        if self.closes <= self.opens:
            raise ValueError("closes must be later than opens")
        return self


class OpeningException(ContractModel):
    """A dated exception to the weekly hours: closed all day, or open at other hours."""

    date: dt.date
    closed: bool
    """True: closed all day, and ``opens``/``closes`` are null."""
    opens: ClockTime | None = None
    closes: ClockTime | None = None

    @model_validator(mode="after")
    def _hours_match_closed(self) -> Self:
        if self.closed:
            if self.opens is not None or self.closes is not None:
                raise ValueError("a closed day has no opening hours")
        elif self.opens is None or self.closes is None or self.closes <= self.opens:
            raise ValueError("an open day needs opens and a later closes")
        return self


def _one_exception_per_date(
    exceptions: tuple[OpeningException, ...],
) -> tuple[OpeningException, ...]:
    unique(tuple(exception.date for exception in exceptions))
    return exceptions


class OpeningHours(ContractModel):
    """When an entry is open: weekly intervals plus dated exceptions (holidays, closures)."""

    weekly: tuple[WeeklyOpening, ...]
    """Several intervals per weekday are allowed (e.g. a lunch break); none means closed."""
    exceptions: Annotated[
        tuple[OpeningException, ...], AfterValidator(_one_exception_per_date)
    ] = ()
    """At most one exception per date; it replaces that day's weekly intervals."""


class SiteUpserted(Payload):
    """A site was created or changed; the event carries its full state.

    Published by the registry service. A site is a building or address where one or more entries
    are located (co-location).
    """

    key_fields: ClassVar[tuple[str, ...]] = ("site_id",)

    site_id: Id
    version: Version
    name: Name
    address: Address
    district: District
    latitude: Annotated[float, Field(ge=-90, le=90)]
    """WGS 84 degrees."""
    longitude: Annotated[float, Field(ge=-180, le=180)]
    """WGS 84 degrees."""
    owner: Administration
    """The administration that owns or rents the building."""


class SiteRetired(Payload):
    """A site was retired and no longer exists; consumers forget it.

    Published by the registry service.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("site_id",)

    site_id: Id
    version: Version


class EntryUpserted(Payload):
    """An entry point was created or changed; the event carries its full state.

    Published by the registry service. An entry is a place or channel where citizens reach the
    municipality: a citizen service centre, a KVIK point, a library, the contact centre, ...
    """

    key_fields: ClassVar[tuple[str, ...]] = ("entry_id",)

    entry_id: Id
    version: Version
    site_id: Id | None
    """The site the entry is at; null for entries without a building (digital, phone)."""
    name: Name
    kind: EntryKind
    entry_type: EntryType
    administration: Administration
    """The administration that runs the entry."""
    coverage: Coverage
    district: District | None
    """The district the entry serves or stands in; null only for city-wide entries."""
    services: Codes
    """Codes of the catalogue services offered here."""
    staff_help: Annotated[
        tuple[StaffHelp, ...],
        AfterValidator(unique),
        Field(json_schema_extra={"uniqueItems": True}),
    ]
    """How staff can help citizens here; empty means self-service only."""
    status: EntryStatus
    opening_hours: OpeningHours

    @model_validator(mode="after")
    def _district_unless_city_wide(self) -> Self:
        if self.district is None and self.coverage is not Coverage.CITY_WIDE:
            raise ValueError("a local or area entry must name its district")
        return self


class EntryRetired(Payload):
    """An entry point was retired and no longer exists; consumers forget it.

    Published by the registry service. An entry that is only closed for a while is upserted with
    status ``temporarily_closed`` instead.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("entry_id",)

    entry_id: Id
    version: Version


class ServiceUpserted(Payload):
    """A service of the catalogue (change of address, passport, ...) was created or changed.

    Published by the registry service; the event carries the service's full state.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("code",)

    code: Code
    """The stable code other events use to name the service."""
    version: Version
    name: Name
    general_needs: bool
    """True for general needs (about 80 % of enquiries), false for special needs."""


class ServiceRetired(Payload):
    """A service was removed from the catalogue; consumers keep history but offer it no more.

    Published by the registry service.
    """

    key_fields: ClassVar[tuple[str, ...]] = ("code",)

    code: Code
    version: Version
