"""The registry's use cases: create, replace and retire catalogue services, sites and entries;
the filtered and nearest-entry reads; entry audit trails; the bulk import; the HSDS export; the
coverage and co-location reports.

Each use case takes typed inputs (the request models of ``schemas.py``, ids, the version an
``If-Match`` named) and returns the response models of ``schemas.py``, or raises a
:class:`~services.registry.domain.RegistryError` that ``api.py`` maps to a problem. A change is
a function from the current record to the new one, run by the store inside its optimistic
transaction, so its validation (which reads other records) is repeated whenever another write
gets in between.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, NamedTuple

from pydantic import ValidationError

from services.contracts.geography import haversine_km
from services.contracts.payloads.registry import EntryUpserted, ServiceUpserted, SiteUpserted
from services.contracts.reference import District, EntryStatus
from services.plumbing.problems import FieldProblem, coordinate_problems
from services.registry import bulk, domain, hsds
from services.registry.schemas import (
    AuditRecord,
    ColocationReport,
    CoverageReport,
    EntryIn,
    EntryOut,
    HsdsExport,
    ImportChange,
    ImportFormat,
    ImportResult,
    NearbyEntry,
    ServiceIn,
    ServiceOut,
    SiteIn,
    SiteOut,
)
from services.registry.store import (
    AlreadyExists,
    Change,
    Kind,
    NotFound,
    Record,
    RegistryStore,
    StaleVersion,
)


def _state(record: Record[Any]) -> dict[str, Any]:
    return {**record.state.model_dump(), "retired": record.retired}


def _service_out(record: Record[Any]) -> ServiceOut:
    return ServiceOut.model_validate(_state(record))


def _site_out(record: Record[Any]) -> SiteOut:
    return SiteOut.model_validate(_state(record))


def _entry_out(record: Record[Any]) -> EntryOut:
    return EntryOut.model_validate(_state(record))


def _next_version(current: Record[Any] | None) -> int:
    return 1 if current is None else current.version + 1


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _existing(current: Record[Any] | None) -> Record[Any]:
    """The record a retirement changes; retiring twice would publish a second retirement."""
    assert current is not None  # the store only calls a change on an existing record here
    if current.retired:
        raise domain.AlreadyRetired
    return current


async def _retire_plain(current: Record[Any] | None) -> Record[Any]:
    current = _existing(current)
    return Record(current.state.model_copy(update={"version": current.version + 1}), retired=True)


async def _retire_entry(current: Record[Any] | None) -> Record[Any]:
    current = _existing(current)
    state = current.state.model_copy(
        update={"version": current.version + 1, "status": EntryStatus.CLOSED}
    )
    return Record(state, retired=True)


class Edit(NamedTuple):
    """Who changes a record, how (the audit's ``action``), and the version the change is based
    on (None: a create, the id must be free)."""

    actor: str
    action: str
    expected_version: int | None


class RegistryService:
    """The registry's use cases over one :class:`RegistryStore`."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    # --- shared steps ----------------------------------------------------------------------

    async def _save(self, kind: Kind, agg_id: str, change: Change, edit: Edit) -> Record[Any]:
        """Apply ``change`` through the store, its refusals as domain errors."""
        try:
            return await self.store.save(
                kind,
                agg_id,
                change,
                actor=edit.actor,
                action=edit.action,
                expected_version=edit.expected_version,
            )
        except NotFound:
            raise domain.RecordNotFound(kind.value, agg_id) from None
        except AlreadyExists:
            raise domain.IdTaken(kind.value) from None
        except StaleVersion as stale:
            raise domain.VersionStale(stale.current) from None

    async def _read(self, kind: Kind, agg_id: str) -> Record[Any]:
        record = await self.store.get(kind, agg_id)
        if record is None:
            raise domain.RecordNotFound(kind.value, agg_id)
        return record

    async def _live_states(self, kind: Kind) -> list[Any]:
        return [r.state for r in await self.store.all(kind) if not r.retired]

    async def _catalogue(self) -> set[str]:
        return {state.code for state in await self._live_states(Kind.SERVICE)}

    # --- catalogue services ----------------------------------------------------------------

    async def list_services(self, include_retired: bool) -> list[ServiceOut]:
        """Every catalogue service, by code (retired ones only when asked)."""
        records = await self.store.all(Kind.SERVICE)
        return [_service_out(r) for r in records if include_retired or not r.retired]

    async def get_service(self, code: str) -> ServiceOut:
        """One catalogue service."""
        return _service_out(await self._read(Kind.SERVICE, code))

    @staticmethod
    def _service_change(body: ServiceIn, code: str) -> Change:
        async def change(current: Record[Any] | None) -> Record[Any]:
            try:
                state = ServiceUpserted(
                    code=code,
                    version=_next_version(current),
                    name=body.name,
                    general_needs=body.general_needs,
                )
            except ValidationError as error:
                raise domain.InvalidInput(domain.contract_problems(error)) from None
            return Record(state)

        return change

    async def create_service(self, body: ServiceIn, actor: str) -> ServiceOut:
        """Add a service to the catalogue; ``code`` is required."""
        if body.code is None:
            raise domain.InvalidInput([FieldProblem(field="body.code", message="Field required")])
        edit = Edit(actor, "created", None)
        return _service_out(
            await self._save(Kind.SERVICE, body.code, self._service_change(body, body.code), edit)
        )

    async def replace_service(
        self, code: str, body: ServiceIn, expected_version: int, actor: str
    ) -> ServiceOut:
        """Change a catalogue service that is at ``expected_version``."""
        edit = Edit(actor, "updated", expected_version)
        return _service_out(
            await self._save(Kind.SERVICE, code, self._service_change(body, code), edit)
        )

    async def retire_service(self, code: str, expected_version: int, actor: str) -> ServiceOut:
        """Retire a service: kept with its history, offered no more."""
        edit = Edit(actor, "retired", expected_version)
        return _service_out(await self._save(Kind.SERVICE, code, _retire_plain, edit))

    # --- sites -----------------------------------------------------------------------------

    async def list_sites(self, district: District | None, include_retired: bool) -> list[SiteOut]:
        """Every site, optionally of one district (retired ones only when asked)."""
        return [
            _site_out(r)
            for r in await self.store.all(Kind.SITE)
            if (include_retired or not r.retired)
            and (district is None or r.state.district == district)
        ]

    async def get_site(self, site_id: str) -> SiteOut:
        """One site."""
        return _site_out(await self._read(Kind.SITE, site_id))

    @staticmethod
    def _site_change(body: SiteIn, site_id: str) -> Change:
        async def change(current: Record[Any] | None) -> Record[Any]:
            problems = coordinate_problems(body.latitude, body.longitude)
            if problems:
                raise domain.InvalidInput(problems)
            try:
                state = SiteUpserted(
                    site_id=site_id,
                    version=_next_version(current),
                    **body.model_dump(exclude={"site_id"}),
                )
            except ValidationError as error:
                raise domain.InvalidInput(domain.contract_problems(error)) from None
            return Record(state)

        return change

    async def create_site(self, body: SiteIn, actor: str) -> SiteOut:
        """Add a site; its id is ``site_id`` from the body or a new one."""
        site_id = body.site_id or _new_id("site")
        edit = Edit(actor, "created", None)
        return _site_out(
            await self._save(Kind.SITE, site_id, self._site_change(body, site_id), edit)
        )

    async def replace_site(
        self, site_id: str, body: SiteIn, expected_version: int, actor: str
    ) -> SiteOut:
        """Replace the state of a site that is at ``expected_version``."""
        edit = Edit(actor, "updated", expected_version)
        return _site_out(
            await self._save(Kind.SITE, site_id, self._site_change(body, site_id), edit)
        )

    async def retire_site(self, site_id: str, expected_version: int, actor: str) -> SiteOut:
        """Retire a site (kept with its history); refused while entries that are not closed
        use it."""
        in_use = [
            r.state.entry_id
            for r in await self.store.all(Kind.ENTRY)
            if r.state.site_id == site_id and r.state.status is not EntryStatus.CLOSED
        ]
        if in_use:
            raise domain.SiteInUse(in_use)
        edit = Edit(actor, "retired", expected_version)
        return _site_out(await self._save(Kind.SITE, site_id, _retire_plain, edit))

    # --- entries ---------------------------------------------------------------------------

    async def list_entries(self, query: domain.EntryFilter) -> list[EntryOut]:
        """Entries matching every criterion of ``query``, by id (an ``open_at`` without an
        offset is Copenhagen time)."""
        query = dataclasses.replace(query, open_at=domain.as_copenhagen(query.open_at))
        return [_entry_out(r) for r in await self.store.all(Kind.ENTRY) if query.matches(r.state)]

    async def nearest_entries(
        self,
        latitude: float,
        longitude: float,
        *,
        service: str | None,
        open_at: dt.datetime | None,
        open_now: bool,
        limit: int,
    ) -> list[NearbyEntry]:
        """Open entries at a live site, nearest first (haversine), that offer ``service`` and,
        if asked, are open at ``open_at`` (or now)."""
        when = dt.datetime.now(dt.UTC) if open_now else domain.as_copenhagen(open_at)
        query = domain.EntryFilter(service=service, status=EntryStatus.OPEN, open_at=when)
        sites = {state.site_id: state for state in await self._live_states(Kind.SITE)}
        found = []
        for record in await self.store.all(Kind.ENTRY):
            entry = record.state
            site = sites.get(entry.site_id)
            if site is None or not query.matches(entry):
                continue
            distance = haversine_km(latitude, longitude, site.latitude, site.longitude)
            found.append((distance, entry.entry_id, record))
        found.sort(key=lambda item: (item[0], item[1]))
        return [
            NearbyEntry(distance_km=round(distance, 3), entry=_entry_out(record))
            for distance, _, record in found[:limit]
        ]

    async def get_entry(self, entry_id: str) -> EntryOut:
        """One entry."""
        return _entry_out(await self._read(Kind.ENTRY, entry_id))

    async def entry_audit(self, entry_id: str) -> list[AuditRecord]:
        """The audit trail of an entry, oldest first, with who made each change."""
        await self._read(Kind.ENTRY, entry_id)
        trail = await self.store.audit(Kind.ENTRY, entry_id)
        return [AuditRecord.model_validate(record) for record in trail]

    def _entry_change(self, body: EntryIn, entry_id: str) -> Change:
        async def change(current: Record[Any] | None) -> Record[Any]:
            # Every problem at once: the editor fixes them in one round.
            live_sites = {state.site_id for state in await self._live_states(Kind.SITE)}
            entries = [r.state for r in await self.store.all(Kind.ENTRY)]
            problems = domain.entry_problems(
                body, entry_id, live_sites, entries, await self._catalogue(), "body"
            )
            try:
                state = EntryUpserted(
                    entry_id=entry_id,
                    version=_next_version(current),
                    **body.model_dump(exclude={"entry_id"}),
                )
            except ValidationError as error:
                problems.extend(domain.contract_problems(error))
            if problems:
                raise domain.InvalidInput(problems)
            return Record(state)

        return change

    async def create_entry(self, body: EntryIn, actor: str) -> EntryOut:
        """Add an entry; its id is ``entry_id`` from the body or a new one."""
        entry_id = body.entry_id or _new_id("entry")
        edit = Edit(actor, "created", None)
        return _entry_out(
            await self._save(Kind.ENTRY, entry_id, self._entry_change(body, entry_id), edit)
        )

    async def replace_entry(
        self, entry_id: str, body: EntryIn, expected_version: int, actor: str
    ) -> EntryOut:
        """Replace the state of an entry that is at ``expected_version``."""
        edit = Edit(actor, "updated", expected_version)
        return _entry_out(
            await self._save(Kind.ENTRY, entry_id, self._entry_change(body, entry_id), edit)
        )

    async def retire_entry(self, entry_id: str, expected_version: int, actor: str) -> EntryOut:
        """Retire an entry: status ``closed``, history kept, ``entry.retired`` published."""
        edit = Edit(actor, "retired", expected_version)
        return _entry_out(await self._save(Kind.ENTRY, entry_id, _retire_entry, edit))

    # --- bulk import -----------------------------------------------------------------------

    async def import_records(
        self,
        raw: bytes,
        *,
        format: ImportFormat,
        kind: Kind | None,
        dry_run: bool,
        actor: str,
    ) -> ImportResult:
        """Create or replace sites and entries from JSON or CSV (``kind`` says which rows),
        validated as a whole: one bad line refuses everything (:class:`domain.InvalidInput`, each
        problem naming its line and field). ``dry_run`` plans and changes nothing."""
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
            catalogue = await self._catalogue()
            plan = bulk.plan_import(
                sites,
                entries,
                {r.state.site_id: r for r in await self.store.all(Kind.SITE)},
                {r.state.entry_id: r for r in await self.store.all(Kind.ENTRY)},
                catalogue,
            )
        except bulk.ImportRefused as refused:
            raise domain.InvalidInput(refused.problems) from None
        if not dry_run:
            try:
                await self.store.save_many(plan.changes, actor=actor, action="imported")
            except StaleVersion:
                raise domain.ChangedMeanwhile from None
        return ImportResult(
            dry_run=dry_run, changes=[ImportChange.model_validate(c) for c in plan.summary]
        )

    # --- open data and reports -------------------------------------------------------------

    async def export_hsds(self) -> HsdsExport:
        """The live catalogue, sites and entries as Open Referral HSDS 3."""
        return HsdsExport.model_validate(
            hsds.export(
                await self._live_states(Kind.SERVICE),
                await self._live_states(Kind.SITE),
                await self._live_states(Kind.ENTRY),
            )
        )

    async def coverage(self) -> CoverageReport:
        """Per district, the open citizen-service entries, and the districts with none."""
        return domain.coverage_report(r.state for r in await self.store.all(Kind.ENTRY))

    async def colocation(self) -> ColocationReport:
        """Shared sites, and per district the administrations that could share one."""
        sites = await self._live_states(Kind.SITE)
        return domain.colocation_report(sites, (r.state for r in await self.store.all(Kind.ENTRY)))
