"""The role x route table of ``docs/security.md``, parsed: what the auth matrix test checks the
services against (the document is the source of truth, the test keeps the code to it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SECURITY_DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
HEADING = "## Role x route table"
COLUMNS = ["service", "method", "path", "access", "why"]
PUBLIC, DEVICE, CONFIGURED = "public", "device", "configured"


@dataclass(frozen=True)
class RouteRule:
    """One row: who may call ``method path`` of ``service``."""

    service: str
    method: str
    path: str
    access: str
    """``public``, ``device``, ``configured`` or a comma-separated list of roles."""
    why: str

    @property
    def roles(self) -> frozenset[str]:
        """The roles let in (empty for public, device and configured routes)."""
        if self.access in {PUBLIC, DEVICE, CONFIGURED}:
            return frozenset()
        return frozenset(role.strip() for role in self.access.split(","))

    @property
    def key(self) -> tuple[str, str, str]:
        """(service, METHOD, path)."""
        return self.service, self.method, self.path


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_table(path: Path = SECURITY_DOC) -> list[RouteRule]:
    """The rows of the role x route table (the first table after its heading).

    Raises ``ValueError`` for a table that is not in the expected shape, so a malformed
    document fails the test loudly instead of checking fewer routes.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADING)
    rows: list[RouteRule] = []
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("## "):
            break
    if len(table) < 3 or _cells(table[0]) != COLUMNS:
        raise ValueError(f"{path}: the table under {HEADING!r} must have columns {COLUMNS}")
    if not all(re.fullmatch(r":?-+:?", cell) for cell in _cells(table[1])):
        raise ValueError(f"{path}: the second line of the table must be its separator")
    for line in table[2:]:
        cells = _cells(line)
        if len(cells) != len(COLUMNS) or not all(cells[:4]):
            raise ValueError(f"{path}: malformed row {line!r}")
        rows.append(RouteRule(cells[0], cells[1].upper(), cells[2], cells[3], cells[4]))
    keys = [row.key for row in rows]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise ValueError(f"{path}: routes listed twice: {sorted(duplicates)}")
    return rows
