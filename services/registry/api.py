"""The registry's HTTP routes: parse, authorise, call the domain and the store, map errors to
problem+json. Reads are open; changes need the role ``registry:write``."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.contracts.geography import COPENHAGEN, haversine_km
from services.contracts.payloads.registry import EntryUpserted, ServiceUpserted, SiteUpserted
from services.contracts.reference import (
    Administration,
    District,
    EntryKind,
    EntryStatus,
    EntryType,
)
from services.plumbing.auth import RegistryWriter
from services.plumbing.problems import (
    FieldProblem,
    Problem,
    coordinate_problems,
    problem_responses,
)
from services.plumbing.problems import validation_problem as _invalid
from services.registry import bulk, domain, hsds
from services.registry.schemas import AuditRecord, EntryIn, PublicAuditRecord, ServiceIn, SiteIn
from services.registry.store import (
    AlreadyExists,
    Kind,
    NotFound,
    Record,
    RegistryStore,
    StaleVersion,
)

router = APIRouter()

WRITE_PROBLEMS = problem_responses(401, 403, 404, 409, 412, 413, 422, 428)


def _store(request: Request) -> RegistryStore:
    store: RegistryStore = request.app.state.registry_store
    return store


StoreDep = Annotated[RegistryStore, Depends(_store)]
IfMatch = Annotated[
    str | None,
    Header(description='The ETag of the version this change is based on, e.g. "3".'),
]


def _etag(version: int) -> str:
    return f'"{version}"'


def _body(record: Record[Any]) -> dict[str, Any]:
    return {**record.state.model_dump(mode="json"), "retired": record.retired}


def _respond(record: Record[Any], status: int = 200) -> JSONResponse:
    return JSONResponse(_body(record), status_code=status, headers={"ETag": _etag(record.version)})


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


def _contract_problems(error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        message = str(item["msg"])
        if not loc and "district" in message:
            loc = ["district"]
        problems.append(FieldProblem(field=".".join(["body", *loc]), message=message))
    return problems


async def _save(
    store: RegistryStore,
    kind: Kind,
    agg_id: str,
    change: Any,
    *,
    actor: str,
    action: str,
    expected_version: int | None,
) -> Record[Any]:
    try:
        return await store.save(
            kind, agg_id, change, actor=actor, action=action, expected_version=expected_version
        )
    except NotFound:
        raise Problem(404, None, "Not Found", detail=f"No {kind.value} {agg_id}.") from None
    except AlreadyExists:
        raise Problem(
            409, "already-exists", "Already exists", detail=f"The {kind.value} id is taken."
        ) from None
    except StaleVersion as stale:
        raise _stale(stale.current) from None


async def _read(store: RegistryStore, kind: Kind, agg_id: str) -> Record[Any]:
    record = await store.get(kind, agg_id)
    if record is None:
        raise Problem(404, None, "Not Found", detail=f"No {kind.value} {agg_id}.")
    return record


def _refuse_if_retired(current: Record[Any] | None) -> Record[Any]:
    """Retiring twice would publish a second retirement: refuse it (409)."""
    assert current is not None  # the store only calls a change on an existing record here
    if current.retired:
        raise Problem(409, "already-retired", "Already retired", detail="Nothing to retire.")
    return current


def _next_version(current: Record[Any] | None) -> int:
    return 1 if current is None else current.version + 1


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --- catalogue services --------------------------------------------------------------------


@router.get("/services", tags=["services"], summary="The service catalogue")
async def list_services(store: StoreDep, include_retired: bool = False) -> list[dict[str, Any]]:
    """Every catalogue service, by code."""
    return [_body(r) for r in await store.all(Kind.SERVICE) if include_retired or not r.retired]


@router.get("/services/{code}", tags=["services"], responses=problem_responses(404))
async def get_service(code: str, store: StoreDep) -> JSONResponse:
    """One catalogue service, with its version as ETag."""
    return _respond(await _read(store, Kind.SERVICE, code))


def _service_change(body: ServiceIn, code: str) -> Any:
    async def change(current: Record[Any] | None) -> Record[Any]:
        try:
            state = ServiceUpserted(
                code=code,
                version=_next_version(current),
                name=body.name,
                general_needs=body.general_needs,
            )
        except ValidationError as error:
            raise _invalid(_contract_problems(error)) from None
        return Record(state)

    return change


@router.post("/services", tags=["services"], status_code=201, responses=WRITE_PROBLEMS)
async def create_service(body: ServiceIn, store: StoreDep, editor: RegistryWriter) -> JSONResponse:
    """Add a service to the catalogue (``code`` required)."""
    if body.code is None:
        raise _invalid([FieldProblem(field="body.code", message="Field required")])
    record = await _save(
        store,
        Kind.SERVICE,
        body.code,
        _service_change(body, body.code),
        actor=editor.actor,
        action="created",
        expected_version=None,
    )
    return _respond(record, 201)


@router.put("/services/{code}", tags=["services"], responses=WRITE_PROBLEMS)
async def update_service(
    code: str, body: ServiceIn, store: StoreDep, editor: RegistryWriter, if_match: IfMatch = None
) -> JSONResponse:
    """Change a catalogue service; needs ``If-Match``."""
    if body.code is not None and body.code != code:
        raise _invalid([FieldProblem(field="body.code", message="differs from the path")])
    record = await _save(
        store,
        Kind.SERVICE,
        code,
        _service_change(body, code),
        actor=editor.actor,
        action="updated",
        expected_version=_expected_version(if_match),
    )
    return _respond(record)


@router.delete("/services/{code}", tags=["services"], responses=WRITE_PROBLEMS)
async def retire_service(
    code: str, store: StoreDep, editor: RegistryWriter, if_match: IfMatch = None
) -> JSONResponse:
    """Retire a service: kept with its history, offered no more."""

    async def change(current: Record[Any] | None) -> Record[Any]:
        current = _refuse_if_retired(current)
        return Record(
            current.state.model_copy(update={"version": current.version + 1}), retired=True
        )

    record = await _save(
        store,
        Kind.SERVICE,
        code,
        change,
        actor=editor.actor,
        action="retired",
        expected_version=_expected_version(if_match),
    )
    return _respond(record)


# --- sites ---------------------------------------------------------------------------------


@router.get("/sites", tags=["sites"], summary="Sites, optionally of one district")
async def list_sites(
    store: StoreDep, district: District | None = None, include_retired: bool = False
) -> list[dict[str, Any]]:
    """Every site (retired ones only when asked)."""
    return [
        _body(r)
        for r in await store.all(Kind.SITE)
        if (include_retired or not r.retired) and (district is None or r.state.district == district)
    ]


@router.get("/sites/{site_id}", tags=["sites"], responses=problem_responses(404))
async def get_site(site_id: str, store: StoreDep) -> JSONResponse:
    """One site, with its version as ETag."""
    return _respond(await _read(store, Kind.SITE, site_id))


def _site_change(body: SiteIn, site_id: str) -> Any:
    async def change(current: Record[Any] | None) -> Record[Any]:
        problems = coordinate_problems(body.latitude, body.longitude)
        if problems:
            raise _invalid(problems)
        try:
            state = SiteUpserted(
                site_id=site_id,
                version=_next_version(current),
                **body.model_dump(exclude={"site_id"}),
            )
        except ValidationError as error:
            raise _invalid(_contract_problems(error)) from None
        return Record(state)

    return change


@router.post("/sites", tags=["sites"], status_code=201, responses=WRITE_PROBLEMS)
async def create_site(body: SiteIn, store: StoreDep, editor: RegistryWriter) -> JSONResponse:
    """Add a site; its id is ``site_id`` from the body or a new one."""
    site_id = body.site_id or _new_id("site")
    record = await _save(
        store,
        Kind.SITE,
        site_id,
        _site_change(body, site_id),
        actor=editor.actor,
        action="created",
        expected_version=None,
    )
    return _respond(record, 201)


@router.put("/sites/{site_id}", tags=["sites"], responses=WRITE_PROBLEMS)
async def update_site(
    site_id: str, body: SiteIn, store: StoreDep, editor: RegistryWriter, if_match: IfMatch = None
) -> JSONResponse:
    """Replace a site's state; needs ``If-Match``."""
    if body.site_id is not None and body.site_id != site_id:
        raise _invalid([FieldProblem(field="body.site_id", message="differs from the path")])
    record = await _save(
        store,
        Kind.SITE,
        site_id,
        _site_change(body, site_id),
        actor=editor.actor,
        action="updated",
        expected_version=_expected_version(if_match),
    )
    return _respond(record)


@router.delete("/sites/{site_id}", tags=["sites"], responses=WRITE_PROBLEMS)
async def retire_site(
    site_id: str, store: StoreDep, editor: RegistryWriter, if_match: IfMatch = None
) -> JSONResponse:
    """Retire a site (kept with its history). Refused while entries that are not closed use it."""
    expected = _expected_version(if_match)
    in_use = [
        r.state.entry_id
        for r in await store.all(Kind.ENTRY)
        if r.state.site_id == site_id and r.state.status is not EntryStatus.CLOSED
    ]
    if in_use:
        raise Problem(
            409, "site-in-use", "Site in use", detail=f"Close its entries first: {in_use}."
        )

    async def change(current: Record[Any] | None) -> Record[Any]:
        current = _refuse_if_retired(current)
        return Record(
            current.state.model_copy(update={"version": current.version + 1}), retired=True
        )

    record = await _save(
        store,
        Kind.SITE,
        site_id,
        change,
        actor=editor.actor,
        action="retired",
        expected_version=expected,
    )
    return _respond(record)


# --- entries -------------------------------------------------------------------------------


def _as_copenhagen(when: dt.datetime | None) -> dt.datetime | None:
    # A time without an offset is what a citizen means on the clock in Copenhagen.
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=COPENHAGEN)


@router.get("/entries", tags=["entries"], summary="Entries, filtered")
async def list_entries(
    store: StoreDep,
    district: District | None = None,
    kind: EntryKind | None = None,
    administration: Administration | None = None,
    entry_type: EntryType | None = None,
    service: str | None = None,
    status: EntryStatus | None = None,
    open_at: Annotated[
        dt.datetime | None,
        Query(description="Only entries open at this time (no offset: Copenhagen time)."),
    ] = None,
) -> list[dict[str, Any]]:
    """Entries matching every given filter, by id."""
    query = domain.EntryFilter(
        district=district,
        kind=kind,
        administration=administration,
        entry_type=entry_type,
        service=service,
        status=status,
        open_at=_as_copenhagen(open_at),
    )
    return [_body(r) for r in await store.all(Kind.ENTRY) if query.matches(r.state)]


@router.get("/entries/nearest", tags=["entries"], summary="Nearest entries offering a service")
async def nearest_entries(
    store: StoreDep,
    latitude: Annotated[float, Query(ge=-90, le=90)],
    longitude: Annotated[float, Query(ge=-180, le=180)],
    service: str | None = None,
    open_at: dt.datetime | None = None,
    open_now: bool = False,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[dict[str, Any]]:
    """Open entries at a site, nearest first (great-circle distance, haversine), that offer
    ``service`` and, if asked, are open at ``open_at`` (or now)."""
    when = dt.datetime.now(dt.UTC) if open_now else _as_copenhagen(open_at)
    query = domain.EntryFilter(service=service, status=EntryStatus.OPEN, open_at=when)
    sites = {r.state.site_id: r.state for r in await store.all(Kind.SITE) if not r.retired}
    found = []
    for record in await store.all(Kind.ENTRY):
        entry = record.state
        site = sites.get(entry.site_id)
        if site is None or not query.matches(entry):
            continue
        distance = haversine_km(latitude, longitude, site.latitude, site.longitude)
        found.append((distance, entry.entry_id, _body(record)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [{"distance_km": round(d, 3), "entry": body} for d, _, body in found[:limit]]


@router.get("/entries/{entry_id}", tags=["entries"], responses=problem_responses(404))
async def get_entry(entry_id: str, store: StoreDep) -> JSONResponse:
    """One entry, with its version as ETag."""
    return _respond(await _read(store, Kind.ENTRY, entry_id))


@router.get("/entries/{entry_id}/audit", tags=["entries"], responses=problem_responses(404))
async def entry_audit(entry_id: str, store: StoreDep) -> list[PublicAuditRecord]:
    """What changed in the entry and when; oldest first.

    The route is public (the change history of open data), so it shows no actor (the model
    has no such field): who made each change is for editors, at
    ``GET /entries/{entry_id}/audit/actors`` (issue 19, item 2).
    """
    await _read(store, Kind.ENTRY, entry_id)
    trail = await store.audit(Kind.ENTRY, entry_id)
    return [PublicAuditRecord.model_validate(record) for record in trail]


@router.get(
    "/entries/{entry_id}/audit/actors",
    tags=["entries"],
    responses=problem_responses(401, 403, 404),
    summary="The entry's audit trail with who made each change",
)
async def entry_audit_with_actors(
    entry_id: str, store: StoreDep, _: RegistryWriter
) -> list[AuditRecord]:
    """The full audit trail of an entry, oldest first, each change with its ``actor``: the
    editor's pseudonymous id, never the token's subject. Read-only, for editors
    (``registry:write``) who need to know who changed what; the public trail leaves ``actor``
    out."""
    await _read(store, Kind.ENTRY, entry_id)
    trail = await store.audit(Kind.ENTRY, entry_id)
    return [AuditRecord.model_validate(record) for record in trail]


async def _entry_problems(store: RegistryStore, body: EntryIn, entry_id: str) -> list[FieldProblem]:
    live_sites = {r.state.site_id for r in await store.all(Kind.SITE) if not r.retired}
    catalogue = {r.state.code for r in await store.all(Kind.SERVICE) if not r.retired}
    entries = [r.state for r in await store.all(Kind.ENTRY)]
    return domain.entry_problems(body, entry_id, live_sites, entries, catalogue, "body")


def _entry_change(store: RegistryStore, body: EntryIn, entry_id: str) -> Any:
    async def change(current: Record[Any] | None) -> Record[Any]:
        # Every problem at once: the editor fixes them in one round.
        problems = await _entry_problems(store, body, entry_id)
        try:
            state = EntryUpserted(
                entry_id=entry_id,
                version=_next_version(current),
                **body.model_dump(exclude={"entry_id"}),
            )
        except ValidationError as error:
            problems.extend(_contract_problems(error))
        if problems:
            raise _invalid(problems)
        return Record(state)

    return change


@router.post("/entries", tags=["entries"], status_code=201, responses=WRITE_PROBLEMS)
async def create_entry(body: EntryIn, store: StoreDep, editor: RegistryWriter) -> JSONResponse:
    """Add an entry; its id is ``entry_id`` from the body or a new one."""
    entry_id = body.entry_id or _new_id("entry")
    record = await _save(
        store,
        Kind.ENTRY,
        entry_id,
        _entry_change(store, body, entry_id),
        actor=editor.actor,
        action="created",
        expected_version=None,
    )
    return _respond(record, 201)


@router.put("/entries/{entry_id}", tags=["entries"], responses=WRITE_PROBLEMS)
async def update_entry(
    entry_id: str,
    body: EntryIn,
    store: StoreDep,
    editor: RegistryWriter,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Replace an entry's state; needs ``If-Match``."""
    if body.entry_id is not None and body.entry_id != entry_id:
        raise _invalid([FieldProblem(field="body.entry_id", message="differs from the path")])
    record = await _save(
        store,
        Kind.ENTRY,
        entry_id,
        _entry_change(store, body, entry_id),
        actor=editor.actor,
        action="updated",
        expected_version=_expected_version(if_match),
    )
    return _respond(record)


@router.delete("/entries/{entry_id}", tags=["entries"], responses=WRITE_PROBLEMS)
async def retire_entry(
    entry_id: str, store: StoreDep, editor: RegistryWriter, if_match: IfMatch = None
) -> JSONResponse:
    """Retire an entry: status ``closed``, history kept, ``entry.retired`` published."""

    async def change(current: Record[Any] | None) -> Record[Any]:
        current = _refuse_if_retired(current)
        state = current.state.model_copy(
            update={"version": current.version + 1, "status": EntryStatus.CLOSED}
        )
        return Record(state, retired=True)

    record = await _save(
        store,
        Kind.ENTRY,
        entry_id,
        change,
        actor=editor.actor,
        action="retired",
        expected_version=_expected_version(if_match),
    )
    return _respond(record)


# --- bulk import ---------------------------------------------------------------------------


class ImportFormat(StrEnum):
    """The formats ``POST /import`` reads."""

    JSON = "json"
    CSV = "csv"


@router.post(
    "/import",
    tags=["import"],
    summary="Bulk import of sites and entries, all or nothing",
    responses=WRITE_PROBLEMS,
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
    store: StoreDep,
    editor: RegistryWriter,
    format: ImportFormat = ImportFormat.JSON,
    kind: Annotated[Kind | None, Query(description="For CSV: `site` or `entry` rows.")] = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Create or replace sites and entries from JSON (``{"sites": [...], "entries": [...]}``)
    or CSV (``kind`` says which; columns in ``services/registry/bulk.py``). Validated as a
    whole: one bad line refuses everything with 422, each problem naming its line and field.
    ``dry_run=true`` answers what would change and changes nothing."""
    raw = await request.body()
    try:
        if format is ImportFormat.CSV:
            if kind not in {Kind.SITE, Kind.ENTRY}:
                raise bulk.ImportRefused(
                    [FieldProblem(field="query.kind", message="site or entry for CSV")]
                )
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise bulk.ImportRefused(
                    [FieldProblem(field="body", message="CSV must be UTF-8")]
                ) from None
            rows = bulk.parse_csv(text, kind)
            sites, entries = (rows, []) if kind is Kind.SITE else ([], rows)
        else:
            sites, entries = bulk.parse_json(raw)
        catalogue = {r.state.code for r in await store.all(Kind.SERVICE) if not r.retired}
        plan = bulk.plan_import(
            sites,
            entries,
            {r.state.site_id: r for r in await store.all(Kind.SITE)},
            {r.state.entry_id: r for r in await store.all(Kind.ENTRY)},
            catalogue,
        )
    except bulk.ImportRefused as refused:
        raise _invalid(refused.problems) from None
    if not dry_run:
        try:
            await store.save_many(plan.changes, actor=editor.actor, action="imported")
        except StaleVersion:
            raise Problem(
                409,
                "changed-meanwhile",
                "Changed meanwhile",
                detail="Records in the import changed while it was checked; nothing was "
                "imported. Send it again.",
            ) from None
    return {"dry_run": dry_run, "changes": plan.summary}


# --- open data -----------------------------------------------------------------------------


@router.get("/export/hsds", tags=["open data"], summary="The catalogue as Open Referral HSDS 3")
async def export_hsds(store: StoreDep) -> dict[str, Any]:
    """Organizations (administrations), locations (sites) and services (entries, with their
    service_at_locations and schedules) in the HSDS 3 shape; retired records left out."""
    return hsds.export(
        [r.state for r in await store.all(Kind.SERVICE) if not r.retired],
        [r.state for r in await store.all(Kind.SITE) if not r.retired],
        [r.state for r in await store.all(Kind.ENTRY) if not r.retired],
    )


# --- reports -------------------------------------------------------------------------------


@router.get("/reports/coverage", tags=["reports"], summary="Citizen-service entries per district")
async def coverage(store: StoreDep) -> dict[str, object]:
    """Per district, the open citizen-service entries (centre, KVIK point, mobile stop); and
    the districts that have none (the seeds' goal: at least one in each of the 10)."""
    return domain.coverage_report(r.state for r in await store.all(Kind.ENTRY))


@router.get("/reports/co-location", tags=["reports"], summary="Shared and shareable sites")
async def colocation(store: StoreDep) -> dict[str, object]:
    """Sites where several administrations have entries; per district, administrations with
    separate sites that could share one."""
    sites = [r.state for r in await store.all(Kind.SITE) if not r.retired]
    return domain.colocation_report(sites, (r.state for r in await store.all(Kind.ENTRY)))
