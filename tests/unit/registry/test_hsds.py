"""The HSDS 3 export of the seed data validates against the shipped Open Referral schemas."""

from __future__ import annotations

import copy
from typing import Any

from services.registry import hsds
from services.registry.seed import load_seed
from services.registry.settings import DEFAULT_SEED_FILE
from services.registry.store import Kind
from tests.unit.registry.hsds_schemas import validation_errors


def _seed_export() -> dict[str, Any]:
    by_kind: dict[Kind, list[Any]] = {kind: [] for kind in Kind}
    for kind, record in load_seed(DEFAULT_SEED_FILE):
        by_kind[kind].append(record.state)
    return hsds.export(by_kind[Kind.SERVICE], by_kind[Kind.SITE], by_kind[Kind.ENTRY])


def test_the_export_of_the_seed_data_validates_against_the_hsds_schemas() -> None:
    document = _seed_export()
    assert validation_errors(document) == []
    assert len(document["organizations"]) == 7
    assert document["services"]


def test_the_validation_catches_an_export_that_breaks_the_schema() -> None:
    document = copy.deepcopy(_seed_export())
    document["services"][0]["status"] = "sometimes"
    del document["locations"][0]["location_type"]
    errors = validation_errors(document)
    assert any(e.startswith("services[0].status") for e in errors), errors
    assert any(e.startswith("locations[0]") and "location_type" in e for e in errors), errors


def test_the_validation_follows_references_into_nested_objects() -> None:
    document = copy.deepcopy(_seed_export())
    document["services"][0]["organization"]["id"] = "not-a-uuid"
    errors = validation_errors(document)
    assert any(e.startswith("services[0].organization.id") for e in errors), errors
