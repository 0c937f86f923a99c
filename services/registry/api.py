"""The registry's HTTP routes: parse the request, authorise, call a use case of
``service.py`` and map its result (a response model of ``schemas.py``) or its refusal (a
``domain.RegistryError``) to HTTP. Reads are open; changes need the role ``registry:write``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.contracts.reference import (
    Administration,
    District,
    EntryKind,
    EntryStatus,
    EntryType,
)
from services.plumbing.auth import RegistryWriter
from services.plumbing.exact_values import QueryDatetime, QueryFloat, QueryInt
from services.plumbing.problems import FieldProblem, Problem, problem_responses
from services.plumbing.problems import validation_problem as _invalid
from services.registry.domain import (
    AlreadyRetired,
    ChangedMeanwhile,
    EntryFilter,
    IdTaken,
    InvalidInput,
    RecordNotFound,
    RegistryError,
    SiteInUse,
    VersionStale,
)
from services.registry.schemas import (
    AuditRecord,
    ColocationReport,
    CoverageReport,
    EntryIn,
    EntryOut,
    HsdsExport,
    ImportFormat,
    ImportResult,
    NearbyEntry,
    PublicAuditRecord,
    ServiceIn,
    ServiceOut,
    SiteIn,
    SiteOut,
)
from services.registry.service import RegistryService
from services.registry.store import Kind, RegistryStore

router = APIRouter()

WRITE_PROBLEMS = problem_responses(401, 403, 404, 409, 412, 413, 422, 428)

T = TypeVar("T")
Out = TypeVar("Out", ServiceOut, SiteOut, EntryOut)


def _service(request: Request) -> RegistryService:
    store: RegistryStore = request.app.state.registry_store
    return RegistryService(store)


ServiceDep = Annotated[RegistryService, Depends(_service)]
IfMatch = Annotated[
    str | None,
    Header(description='The ETag of the version this change is based on, e.g. "3".'),
]


def _etag(version: int) -> str:
    return f'"{version}"'


def _expected_version(if_match: str | None) -> int:
    """The version an ``If-Match`` names; 428 without one, 412 for one that is no version."""
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "If-Match required",
            detail="Send If-Match with the ETag you read, so no one else's change is overwritten.",
        )
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise _stale(None)
    return int(tag)


def _stale(current: int | None) -> Problem:
    return Problem(
        412,
        "version-stale",
        "Version is stale",
        detail="The record changed since you read it; read it again and reapply your change.",
        headers={"ETag": _etag(current)} if current is not None else None,
    )


def _problem(error: RegistryError) -> Problem:
    """The problem+json answer for a use case's refusal."""
    match error:
        case InvalidInput():
            return _invalid(error.problems)
        case RecordNotFound():
            return Problem(404, None, "Not Found", detail=f"No {error.kind} {error.agg_id}.")
        case IdTaken():
            return Problem(
                409, "already-exists", "Already exists", detail=f"The {error.kind} id is taken."
            )
        case VersionStale():
            return _stale(error.current)
        case AlreadyRetired():
            return Problem(409, "already-retired", "Already retired", detail="Nothing to retire.")
        case SiteInUse():
            return Problem(
                409,
                "site-in-use",
                "Site in use",
                detail=f"Close its entries first: {error.entry_ids}.",
            )
        case ChangedMeanwhile():
            return Problem(
                409,
                "changed-meanwhile",
                "Changed meanwhile",
                detail="Records in the import changed while it was checked; nothing was "
                "imported. Send it again.",
            )
    raise TypeError(f"no problem for {type(error).__name__}")  # a new error without a mapping


async def _run(call: Awaitable[T]) -> T:
    """Await a use case, answering its refusal with the matching problem."""
    try:
        return await call
    except RegistryError as error:
        raise _problem(error) from None


def _tagged(response: Response, record: Out) -> Out:
    """``record`` with its version as the response's ETag."""
    response.headers["ETag"] = _etag(record.version)
    return record


def _same_id(path_id: str, body_id: str | None, field: str) -> None:
    """A replaced record's id comes from the path; a body naming another one is refused."""
    if body_id is not None and body_id != path_id:
        raise _invalid([FieldProblem(field=f"body.{field}", message="differs from the path")])


# --- catalogue services --------------------------------------------------------------------


@router.get("/services", tags=["services"], summary="The service catalogue")
async def list_services(registry: ServiceDep, include_retired: bool = False) -> list[ServiceOut]:
    """Every catalogue service, by code."""
    return await registry.list_services(include_retired)


@router.get("/services/{code}", tags=["services"], responses=problem_responses(404))
async def get_service(code: str, registry: ServiceDep, response: Response) -> ServiceOut:
    """One catalogue service, with its version as ETag."""
    return _tagged(response, await _run(registry.get_service(code)))


@router.post("/services", tags=["services"], status_code=201, responses=WRITE_PROBLEMS)
async def create_service(
    body: ServiceIn, registry: ServiceDep, editor: RegistryWriter, response: Response
) -> ServiceOut:
    """Add a service to the catalogue (``code`` required)."""
    return _tagged(response, await _run(registry.create_service(body, editor.actor)))


@router.put("/services/{code}", tags=["services"], responses=WRITE_PROBLEMS)
async def update_service(
    code: str,
    body: ServiceIn,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> ServiceOut:
    """Change a catalogue service; needs ``If-Match``."""
    _same_id(code, body.code, "code")
    expected = _expected_version(if_match)
    return _tagged(
        response, await _run(registry.replace_service(code, body, expected, editor.actor))
    )


@router.delete("/services/{code}", tags=["services"], responses=WRITE_PROBLEMS)
async def retire_service(
    code: str,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> ServiceOut:
    """Retire a service: kept with its history, offered no more."""
    expected = _expected_version(if_match)
    return _tagged(response, await _run(registry.retire_service(code, expected, editor.actor)))


# --- sites ---------------------------------------------------------------------------------


@router.get("/sites", tags=["sites"], summary="Sites, optionally of one district")
async def list_sites(
    registry: ServiceDep, district: District | None = None, include_retired: bool = False
) -> list[SiteOut]:
    """Every site (retired ones only when asked)."""
    return await registry.list_sites(district, include_retired)


@router.get("/sites/{site_id}", tags=["sites"], responses=problem_responses(404))
async def get_site(site_id: str, registry: ServiceDep, response: Response) -> SiteOut:
    """One site, with its version as ETag."""
    return _tagged(response, await _run(registry.get_site(site_id)))


@router.post("/sites", tags=["sites"], status_code=201, responses=WRITE_PROBLEMS)
async def create_site(
    body: SiteIn, registry: ServiceDep, editor: RegistryWriter, response: Response
) -> SiteOut:
    """Add a site; its id is ``site_id`` from the body or a new one."""
    return _tagged(response, await _run(registry.create_site(body, editor.actor)))


@router.put("/sites/{site_id}", tags=["sites"], responses=WRITE_PROBLEMS)
async def update_site(
    site_id: str,
    body: SiteIn,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> SiteOut:
    """Replace a site's state; needs ``If-Match``."""
    _same_id(site_id, body.site_id, "site_id")
    expected = _expected_version(if_match)
    return _tagged(
        response, await _run(registry.replace_site(site_id, body, expected, editor.actor))
    )


@router.delete("/sites/{site_id}", tags=["sites"], responses=WRITE_PROBLEMS)
async def retire_site(
    site_id: str,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> SiteOut:
    """Retire a site (kept with its history). Refused while entries that are not closed use it."""
    expected = _expected_version(if_match)
    return _tagged(response, await _run(registry.retire_site(site_id, expected, editor.actor)))


# --- entries -------------------------------------------------------------------------------


@router.get("/entries", tags=["entries"], summary="Entries, filtered")
async def list_entries(
    registry: ServiceDep,
    district: District | None = None,
    kind: EntryKind | None = None,
    administration: Administration | None = None,
    entry_type: EntryType | None = None,
    service: str | None = None,
    status: EntryStatus | None = None,
    open_at: Annotated[
        QueryDatetime | None,
        Query(description="Only entries open at this time (no offset: Copenhagen time)."),
    ] = None,
) -> list[EntryOut]:
    """Entries matching every given filter, by id."""
    query = EntryFilter(
        district=district,
        kind=kind,
        administration=administration,
        entry_type=entry_type,
        service=service,
        status=status,
        open_at=open_at,
    )
    return await registry.list_entries(query)


@router.get("/entries/nearest", tags=["entries"], summary="Nearest entries offering a service")
async def nearest_entries(
    registry: ServiceDep,
    latitude: Annotated[QueryFloat, Query(ge=-90, le=90)],
    longitude: Annotated[QueryFloat, Query(ge=-180, le=180)],
    service: str | None = None,
    open_at: QueryDatetime | None = None,
    open_now: bool = False,
    limit: Annotated[QueryInt, Query(ge=1, le=50)] = 5,
) -> list[NearbyEntry]:
    """Open entries at a site, nearest first (great-circle distance, haversine), that offer
    ``service`` and, if asked, are open at ``open_at`` (or now)."""
    return await registry.nearest_entries(
        latitude, longitude, service=service, open_at=open_at, open_now=open_now, limit=limit
    )


@router.get("/entries/{entry_id}", tags=["entries"], responses=problem_responses(404))
async def get_entry(entry_id: str, registry: ServiceDep, response: Response) -> EntryOut:
    """One entry, with its version as ETag."""
    return _tagged(response, await _run(registry.get_entry(entry_id)))


@router.get("/entries/{entry_id}/audit", tags=["entries"], responses=problem_responses(404))
async def entry_audit(entry_id: str, registry: ServiceDep) -> list[PublicAuditRecord]:
    """What changed in the entry and when; oldest first.

    The route is public (the change history of open data), so it shows no actor (the model
    has no such field): who made each change is for editors, at
    ``GET /entries/{entry_id}/audit/actors`` (issue 19, item 2).
    """
    trail = await _run(registry.entry_audit(entry_id))
    return [PublicAuditRecord.model_validate(record.model_dump()) for record in trail]


@router.get(
    "/entries/{entry_id}/audit/actors",
    tags=["entries"],
    responses=problem_responses(401, 403, 404),
    summary="The entry's audit trail with who made each change",
)
async def entry_audit_with_actors(
    entry_id: str, registry: ServiceDep, _: RegistryWriter
) -> list[AuditRecord]:
    """The full audit trail of an entry, oldest first, each change with its ``actor``: the
    editor's pseudonymous id, never the token's subject. Read-only, for editors
    (``registry:write``) who need to know who changed what; the public trail leaves ``actor``
    out."""
    return await _run(registry.entry_audit(entry_id))


@router.post("/entries", tags=["entries"], status_code=201, responses=WRITE_PROBLEMS)
async def create_entry(
    body: EntryIn, registry: ServiceDep, editor: RegistryWriter, response: Response
) -> EntryOut:
    """Add an entry; its id is ``entry_id`` from the body or a new one."""
    return _tagged(response, await _run(registry.create_entry(body, editor.actor)))


@router.put("/entries/{entry_id}", tags=["entries"], responses=WRITE_PROBLEMS)
async def update_entry(
    entry_id: str,
    body: EntryIn,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> EntryOut:
    """Replace an entry's state; needs ``If-Match``."""
    _same_id(entry_id, body.entry_id, "entry_id")
    expected = _expected_version(if_match)
    return _tagged(
        response, await _run(registry.replace_entry(entry_id, body, expected, editor.actor))
    )


@router.delete("/entries/{entry_id}", tags=["entries"], responses=WRITE_PROBLEMS)
async def retire_entry(
    entry_id: str,
    registry: ServiceDep,
    editor: RegistryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> EntryOut:
    """Retire an entry: status ``closed``, history kept, ``entry.retired`` published."""
    expected = _expected_version(if_match)
    return _tagged(response, await _run(registry.retire_entry(entry_id, expected, editor.actor)))


# --- bulk import ---------------------------------------------------------------------------


@router.post(
    "/import",
    tags=["import"],
    summary="Bulk import of sites and entries, all or nothing",
    responses=WRITE_PROBLEMS,
    # An unchanged record has no version: the key is left out rather than sent as null.
    response_model_exclude_none=True,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_records(
    request: Request,
    registry: ServiceDep,
    editor: RegistryWriter,
    format: ImportFormat = ImportFormat.JSON,
    kind: Annotated[Kind | None, Query(description="For CSV: `site` or `entry` rows.")] = None,
    dry_run: bool = False,
) -> ImportResult:
    """Create or replace sites and entries from JSON (``{"sites": [...], "entries": [...]}``)
    or CSV (``kind`` says which; columns in ``services/registry/bulk.py``). Validated as a
    whole: one bad line refuses everything with 422, each problem naming its line and field.
    ``dry_run=true`` answers what would change and changes nothing."""
    raw = await request.body()
    return await _run(
        registry.import_records(raw, format=format, kind=kind, dry_run=dry_run, actor=editor.actor)
    )


# --- open data -----------------------------------------------------------------------------


@router.get("/export/hsds", tags=["open data"], summary="The catalogue as Open Referral HSDS 3")
async def export_hsds(registry: ServiceDep) -> HsdsExport:
    """Organizations (administrations), locations (sites) and services (entries, with their
    service_at_locations and schedules) in the HSDS 3 shape; retired records left out."""
    return await registry.export_hsds()


# --- reports -------------------------------------------------------------------------------


@router.get("/reports/coverage", tags=["reports"], summary="Citizen-service entries per district")
async def coverage(registry: ServiceDep) -> CoverageReport:
    """Per district, the open citizen-service entries (centre, KVIK point, mobile stop); and
    the districts that have none (the seeds' goal: at least one in each of the 10)."""
    return await registry.coverage()


@router.get("/reports/co-location", tags=["reports"], summary="Shared and shareable sites")
async def colocation(registry: ServiceDep) -> ColocationReport:
    """Sites where several administrations have entries; per district, administrations with
    separate sites that could share one."""
    return await registry.colocation()
