"""Paths and loaders shared by the deployment checks (static files only, no Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICE_PORTS = {"registry": 8001, "kvik": 8002, "mobile": 8003, "metrics": 8004}


def load_yaml(path: Path) -> Any:
    """One YAML document (anchors and ``<<`` merge keys resolved, as Compose does)."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def compose() -> dict[str, Any]:
    """The parsed docker-compose.yml."""
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository path bind-mounted (``./src:/dst``) at ``container_path``, if any."""
    best: tuple[int, Path] | None = None
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if not source.startswith("./"):
            continue
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            relative = container_path[len(target) :].lstrip("/")
            candidate = (ROOT / source / relative).resolve()
            if best is None or len(target) > best[0]:
                best = (len(target), candidate)
    return None if best is None else best[1]
