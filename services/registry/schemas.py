"""Request and response bodies of the registry's HTTP API.

Request bodies reuse the contract's value types, so what the API accepts is exactly what the
events can carry; the registry adds the id and the version.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, Field, model_validator

from services.contracts.payloads.base import Code, Codes, Id, Name, unique
from services.contracts.payloads.registry import (
    Address,
    EntryUpserted,
    OpeningException,
    ServiceUpserted,
    SiteUpserted,
    StaffHelp,
    WeeklyOpening,
)
from services.contracts.reference import (
    Administration,
    Coverage,
    District,
    EntryKind,
    EntryStatus,
    EntryType,
)
from services.plumbing.edge_models import EdgeModel


class _Body(EdgeModel):
    """Closed, and refusing a CPR-shaped value anywhere in the body with 422 naming its field
    (see ``EdgeModel``); the bulk import validates every JSON item and CSV row into these
    models, so its cells pass the same guard."""


class OpeningHoursIn(_Body):
    """Weekly hours plus dated exceptions, in Copenhagen time."""

    weekly: Annotated[tuple[WeeklyOpening, ...], Field(max_length=70)] = ()
    exceptions: Annotated[tuple[OpeningException, ...], Field(max_length=400)] = ()

    @model_validator(mode="after")
    def _one_exception_per_date(self) -> Self:
        unique(tuple(exception.date for exception in self.exceptions))
        return self


class SiteIn(_Body):
    """A site as an editor writes it; ``site_id`` may be chosen on create."""

    site_id: Id | None = None
    name: Name
    address: Address
    district: District
    latitude: float = Field(ge=-90, le=90, description="WGS 84 degrees")
    longitude: float = Field(ge=-180, le=180, description="WGS 84 degrees")
    owner: Administration


class EntryIn(_Body):
    """An entry as an editor writes it; ``entry_id`` may be chosen on create."""

    entry_id: Id | None = None
    site_id: Id | None = None
    name: Name
    kind: EntryKind
    entry_type: EntryType
    administration: Administration
    coverage: Coverage
    district: District | None = None
    services: Annotated[Codes, Field(max_length=100)] = ()
    staff_help: Annotated[tuple[StaffHelp, ...], AfterValidator(unique), Field(max_length=3)] = ()
    status: EntryStatus = EntryStatus.OPEN
    opening_hours: OpeningHoursIn = OpeningHoursIn()


class ServiceIn(_Body):
    """A catalogue service as an editor writes it; ``code`` is required on create."""

    code: Code | None = None
    name: Name
    general_needs: bool = True


class PublicAuditRecord(BaseModel):
    """One change as the public sees it: what and when, never who."""

    at: dt.datetime
    action: str
    """``created``, ``updated``, ``retired``, ``imported`` or ``seeded``."""
    version: int
    """The record's version after the change."""
    changed: list[str]
    """The fields the change touched."""


class AuditRecord(PublicAuditRecord):
    """One change with who made it, for editors: the pseudonymous id of the editor's token
    (``p-`` + 16 hex digits, services/plumbing/pseudonyms.py), or ``seed`` for the records
    the registry seeded itself."""

    actor: str


class ServiceOut(ServiceUpserted):
    """A catalogue service as the API answers it: its state (the last event's payload) and
    whether it is retired. Its ``version`` is also the response's ETag."""

    retired: bool


class SiteOut(SiteUpserted):
    """A site as the API answers it: its state (the last event's payload) and whether it is
    retired. Its ``version`` is also the response's ETag."""

    retired: bool


class EntryOut(EntryUpserted):
    """An entry as the API answers it: its state (the last event's payload) and whether it is
    retired. Its ``version`` is also the response's ETag."""

    retired: bool


class NearbyEntry(BaseModel):
    """An entry and how far its site is from the asked-for point."""

    distance_km: float
    entry: EntryOut


class ImportFormat(StrEnum):
    """The formats ``POST /import`` reads."""

    JSON = "json"
    CSV = "csv"


class ImportChange(BaseModel):
    """What an import does (or would do) to one record."""

    kind: str
    """``site`` or ``entry``."""
    id: str
    action: str
    """``created``, ``updated`` or ``unchanged``."""
    version: int | None = None
    """The record's version after the change; absent when ``unchanged``."""


class ImportResult(BaseModel):
    """The answer of ``POST /import``: per record what changed (or would, on a dry run)."""

    dry_run: bool
    changes: list[ImportChange]


class HsdsExport(BaseModel):
    """The registry as Open Referral HSDS 3 (``services/registry/hsds.py``): each item is an
    HSDS object, valid against the schemas in ``services/registry/data/hsds``."""

    organizations: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    services: list[dict[str, Any]]


class DistrictCoverage(BaseModel):
    """One district's open citizen-service entries."""

    district: District
    name: str
    citizen_service_entries: list[str]
    covered: bool


class CoverageReport(BaseModel):
    """Per district, the open citizen-service entries; and the districts with none."""

    districts: list[DistrictCoverage]
    missing: list[District]


class SharedSite(BaseModel):
    """A site where several administrations have entries."""

    site_id: str
    name: str
    district: District
    administrations: list[Administration]
    entries: list[str]


class ColocationCandidate(BaseModel):
    """A district where administrations run entries at separate sites of their own."""

    district: District
    separate_sites: dict[str, list[str]]
    """Administration -> the sites only it uses there."""


class ColocationReport(BaseModel):
    """Shared sites, and per district the administrations that could share one."""

    shared_sites: list[SharedSite]
    candidates: list[ColocationCandidate]
