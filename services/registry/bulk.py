"""Bulk import of sites and entries (JSON or CSV): validated as a whole, planned, then applied
all or nothing. Pure functions; the import use case (``service.py``) reads the current state
and the store applies the plan.

Every problem names the line (the CSV line, header = line 1; for JSON the 1-based position in
its array) and the field.

CSV columns - sites: ``site_id,name,street,postal_code,city,district,latitude,longitude,owner``;
entries: ``entry_id,site_id,name,kind,entry_type,administration,coverage,district,services,
staff_help,status,weekly`` where ``services`` and ``staff_help`` are separated by ``;`` and
``weekly`` is ``0 10:00-17:00; 3 10:00-18:00`` (weekday 0 = Monday). Empty cells mean "none".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from services.contracts.payloads.registry import EntryUpserted, SiteUpserted
from services.plumbing.exact_values import TEXT_CELLS
from services.plumbing.problems import FieldProblem, coordinate_problems
from services.registry import domain
from services.registry.schemas import EntryIn, SiteIn
from services.registry.store import Kind, Record

SITE_COLUMNS = [
    "site_id",
    "name",
    "street",
    "postal_code",
    "city",
    "district",
    "latitude",
    "longitude",
    "owner",
]
ENTRY_COLUMNS = [
    "entry_id",
    "site_id",
    "name",
    "kind",
    "entry_type",
    "administration",
    "coverage",
    "district",
    "services",
    "staff_help",
    "status",
    "weekly",
]


@dataclass(frozen=True)
class Row:
    """One record to import: where it came from and what it says."""

    line: int
    label: str
    """``sites[0]``, ``entries[4]``: the field prefix in problems."""
    data: dict[str, Any]
    text: bool = False
    """Read from a CSV file: its numbers are written in digits (``exact_values.TEXT_CELLS``)."""

    @property
    def context(self) -> Mapping[str, bool] | None:
        """The validation context of the row's values."""
        return TEXT_CELLS if self.text else None


@dataclass
class Plan:
    """What an import would do; ``changes`` is what the store applies."""

    changes: list[tuple[Kind, Record[Any], int | None]] = field(default_factory=list)
    """(kind, new record, the current version it replaces or None for a new one)."""
    summary: list[dict[str, Any]] = field(default_factory=list)


class ImportRefused(Exception):
    """The import as a whole is invalid; nothing is applied."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def _problem(row: Row, path: str, message: str) -> FieldProblem:
    return FieldProblem(
        field=f"{row.label}.{path}" if path else row.label, message=f"line {row.line}: {message}"
    )


def _validation_problems(row: Row, error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        message = str(item["msg"])
        if item["type"] == "personal_data":
            # The contract's guard is a model validator: its error sits at the model, with the
            # field it refused in ``ctx``. Name that field, as every other problem does.
            loc.append(str((item.get("ctx") or {}).get("field", "")))
            message = "looks like a CPR number; personal data is not accepted"
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "")
        path = path.lstrip(".")
        if not path and "district" in message:
            path = "district"
        problems.append(_problem(row, path, message))
    return problems


def parse_json(raw: bytes) -> tuple[list[Row], list[Row]]:
    """``{"sites": [...], "entries": [...]}`` into rows (either list may be missing)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ImportRefused([FieldProblem(field="body", message=f"not JSON: {error}")]) from None
    except RecursionError:
        # A body nested deeper than the parser's stack is no import file either.
        raise ImportRefused(
            [FieldProblem(field="body", message="not JSON: nested too deeply")]
        ) from None
    if not isinstance(doc, dict) or not set(doc) <= {"sites", "entries"}:
        raise ImportRefused(
            [FieldProblem(field="body", message='expected {"sites": [...], "entries": [...]}')]
        )
    rows: dict[str, list[Row]] = {"sites": [], "entries": []}
    for name in rows:
        items = doc.get(name, [])
        if not isinstance(items, list):
            raise ImportRefused([FieldProblem(field=name, message="must be a list")])
        for index, item in enumerate(items):
            data = item if isinstance(item, dict) else {"_": item}
            rows[name].append(Row(index + 1, f"{name}[{index}]", data))
    return rows["sites"], rows["entries"]


def _cell(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]


def _weekly(value: str | None) -> list[dict[str, Any]]:
    weekly: list[dict[str, Any]] = []
    for part in _list(value):
        day, _, span = part.partition(" ")
        opens, _, closes = span.strip().partition("-")
        weekly.append({"weekday": day, "opens": opens, "closes": closes})
    return weekly


def parse_csv(text: str, kind: Kind) -> list[Row]:
    """CSV rows of sites or entries into rows with the JSON shape."""
    reader = csv.DictReader(io.StringIO(text))
    expected = SITE_COLUMNS if kind is Kind.SITE else ENTRY_COLUMNS
    missing = [c for c in expected if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportRefused(
            [FieldProblem(field="line 1", message=f"missing columns: {', '.join(missing)}")]
        )
    name = "sites" if kind is Kind.SITE else "entries"
    rows = []
    for index, raw in enumerate(reader):
        cells = {k: _cell(v) for k, v in raw.items() if k is not None}
        data: dict[str, Any]
        if kind is Kind.SITE:
            data = {
                k: cells[k]
                for k in ("site_id", "name", "district", "latitude", "longitude", "owner")
            }
            data["address"] = {k: cells[k] for k in ("street", "postal_code", "city")}
        else:
            data = {
                k: cells[k]
                for k in (
                    "entry_id",
                    "site_id",
                    "name",
                    "kind",
                    "entry_type",
                    "administration",
                    "coverage",
                    "district",
                    "status",
                )
            }
            data["services"] = _list(cells["services"])
            data["staff_help"] = _list(cells["staff_help"])
            data["opening_hours"] = {"weekly": _weekly(cells["weekly"])}
        # Line numbers as an editor sees them in a spreadsheet: the header is line 1.
        rows.append(Row(reader.line_num, f"{name}[{index}]", data, text=True))
    return rows


def _same(current: Record[Any] | None, state: BaseModel) -> bool:
    if current is None or current.retired:
        return False
    old = current.state.model_dump(mode="json")
    new = state.model_dump(mode="json")
    old.pop("version")
    new.pop("version")
    return bool(old == new)


def plan_import(
    sites: list[Row],
    entries: list[Row],
    current_sites: dict[str, Record[Any]],
    current_entries: dict[str, Record[Any]],
    catalogue: set[str],
) -> Plan:
    """Validate everything against the current state plus the import itself, and plan the
    changes. Raises :class:`ImportRefused` with every problem found."""
    problems: list[FieldProblem] = []
    new_sites: list[tuple[Row, SiteUpserted]] = []
    seen: set[str] = set()
    for row in sites:
        try:
            body = SiteIn.model_validate(row.data, context=row.context)
            if body.site_id is None:
                problems.append(_problem(row, "site_id", "required in an import"))
                continue
            # The contract refuses what the edge model lets through (a CPR-shaped name or
            # id): that is the line's problem too, never an error of the server.
            site = SiteUpserted(version=1, **body.model_dump())
        except ValidationError as error:
            problems.extend(_validation_problems(row, error))
            continue
        if site.site_id in seen:
            problems.append(_problem(row, "site_id", "appears twice in the import"))
        seen.add(site.site_id)
        problems.extend(coordinate_problems(body.latitude, body.longitude, prefix=row.label))
        new_sites.append((row, site))

    live_sites = {i for i, r in current_sites.items() if not r.retired} | seen
    parsed: list[tuple[Row, EntryIn, EntryUpserted]] = []
    seen = set()
    for row in entries:
        try:
            entry_in = EntryIn.model_validate(row.data, context=row.context)
            if entry_in.entry_id is None:
                problems.append(_problem(row, "entry_id", "required in an import"))
                continue
            state = EntryUpserted(version=1, **entry_in.model_dump())
        except ValidationError as error:
            problems.extend(_validation_problems(row, error))
            continue
        if state.entry_id in seen:
            problems.append(_problem(row, "entry_id", "appears twice in the import"))
        seen.add(state.entry_id)
        parsed.append((row, entry_in, state))
    merged = {i: r.state for i, r in current_entries.items()}
    merged.update({state.entry_id: state for _, _, state in parsed})
    for row, entry_in, state in parsed:
        for problem in domain.entry_problems(
            entry_in, state.entry_id, live_sites, merged.values(), catalogue, row.label
        ):
            problems.append(
                FieldProblem(field=problem.field, message=f"line {row.line}: {problem.message}")
            )
    if problems:
        raise ImportRefused(problems)

    plan = Plan()
    planned: list[tuple[Kind, list[Any], dict[str, Record[Any]]]] = [
        (Kind.SITE, [s for _, s in new_sites], current_sites),
        (Kind.ENTRY, [s for _, _, s in parsed], current_entries),
    ]
    for kind, items, current_map in planned:
        for new_state in items:
            agg_id = new_state.aggregate_id
            current = current_map.get(agg_id)
            if _same(current, new_state):
                plan.summary.append({"kind": kind.value, "id": agg_id, "action": "unchanged"})
                continue
            version = 1 if current is None else current.version + 1
            record = Record(new_state.model_copy(update={"version": version}))
            plan.changes.append((kind, record, None if current is None else current.version))
            action = "created" if current is None else "updated"
            plan.summary.append(
                {"kind": kind.value, "id": agg_id, "action": action, "version": version}
            )
    return plan
