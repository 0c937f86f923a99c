"""The Copenhagen seed data (``data/copenhagen.json``) as records ready for the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.contracts.payloads.registry import EntryUpserted, ServiceUpserted, SiteUpserted
from services.registry.store import Kind, Record


def load_seed(path: Path) -> list[tuple[Kind, Record[Any]]]:
    """Services, sites and entries from the seed file, each at version 1.

    The file's ``source`` and ``illustrative`` notes document provenance and are not part of
    the state. Raises ``pydantic.ValidationError`` if the file breaks the contract.
    """
    doc = json.loads(path.read_text(encoding="utf-8"))
    records: list[tuple[Kind, Record[Any]]] = []
    for item in doc["services"]:
        records.append((Kind.SERVICE, Record(ServiceUpserted(version=1, **_state(item)))))
    for item in doc["sites"]:
        records.append((Kind.SITE, Record(SiteUpserted(version=1, **_state(item)))))
    for item in doc["entries"]:
        records.append((Kind.ENTRY, Record(EntryUpserted(version=1, **_state(item)))))
    return records


def _state(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in {"source", "illustrative"}}
