"""Validation of an HSDS export against the HSDS 3 schemas shipped in
``services/registry/data/hsds`` (jsonschema is a test dependency, so this lives with the tests)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.registry.hsds import SCHEMA_DIR


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((path.name, Resource.from_contents(contents, DRAFT202012)))
    return Registry().with_resources(resources)


def validation_errors(document: dict[str, Any]) -> list[str]:
    """Everything in an export that the shipped HSDS schemas refuse; empty when it is valid."""
    registry = _registry()
    problems = []
    for collection, schema_name in (
        ("organizations", "organization.json"),
        ("locations", "location.json"),
        ("services", "service.json"),
    ):
        schema = registry.contents(schema_name)
        validator = Draft202012Validator(
            schema,
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for index, item in enumerate(document[collection]):
            for error in validator.iter_errors(item):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
                problems.append(f"{collection}[{index}]{path}: {error.message}")
    return problems
