"""The checked-in event schemas and AsyncAPI document are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

from services.contracts.schema_export import SCHEMAS_DIR, generate

REPO_ROOT = Path(__file__).resolve().parents[3]
FIX = "the event docs drifted from the models in services/contracts: run `make schemas`"


def test_every_generated_file_is_checked_in_byte_for_byte() -> None:
    drifted = [
        relative
        for relative, content in generate().items()
        if not (REPO_ROOT / relative).is_file()
        or (REPO_ROOT / relative).read_bytes() != content.encode("utf-8")
    ]
    assert not drifted, f"{FIX}; missing or different: {', '.join(drifted)}"


def test_no_schema_file_is_checked_in_that_no_model_generates() -> None:
    generated = set(generate())
    extra = [
        path.relative_to(REPO_ROOT).as_posix()
        for path in sorted((REPO_ROOT / SCHEMAS_DIR).glob("*"))
        if path.relative_to(REPO_ROOT).as_posix() not in generated
    ]
    assert not extra, f"{FIX}; stale files: {', '.join(extra)}"
