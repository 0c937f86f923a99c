"""The Copenhagen seed file: valid against the contract and the registry's own rules."""

from __future__ import annotations

import json
from typing import Any

from services.contracts.geography import outside_municipality
from services.contracts.reference import District
from services.registry import domain
from services.registry.seed import load_seed
from services.registry.settings import DEFAULT_SEED_FILE
from services.registry.store import Kind


def _records() -> dict[Kind, list[Any]]:
    out: dict[Kind, list[Any]] = {kind: [] for kind in Kind}
    for kind, record in load_seed(DEFAULT_SEED_FILE):
        out[kind].append(record.state)
    return out


def test_every_seed_record_names_its_source_and_whether_it_is_illustrative() -> None:
    doc = json.loads(DEFAULT_SEED_FILE.read_text(encoding="utf-8"))
    for item in doc["sites"] + doc["entries"]:
        assert item["source"], item
        assert isinstance(item["illustrative"], bool), item


def test_seed_entries_refer_to_seeded_sites_and_services() -> None:
    records = _records()
    sites = {s.site_id for s in records[Kind.SITE]}
    codes = {s.code for s in records[Kind.SERVICE]}
    for entry in records[Kind.ENTRY]:
        assert entry.site_id is None or entry.site_id in sites, entry.entry_id
        assert set(entry.services) <= codes, entry.entry_id


def test_seed_sites_are_in_copenhagen_and_entries_have_valid_hours_and_unique_names() -> None:
    records = _records()
    for site in records[Kind.SITE]:
        assert outside_municipality(site.latitude, site.longitude) == [], site.site_id
    names = set()
    for entry in records[Kind.ENTRY]:
        assert domain.opening_hour_problems(entry.opening_hours.weekly, "x") == []
        key = (entry.site_id, entry.name.casefold())
        assert key not in names
        names.add(key)


def test_seed_sites_cover_all_ten_districts() -> None:
    assert {site.district for site in _records()[Kind.SITE]} == set(District)
