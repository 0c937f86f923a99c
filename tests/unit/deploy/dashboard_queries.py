"""Read the PromQL out of the checked-in Grafana dashboards, the way Grafana would run it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.deploy.support import DEPLOY

DASHBOARD_FOLDER = DEPLOY / "grafana" / "dashboards"

# Grafana's built-in interval variables, set to what a short test range would give.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "10m",
}
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, with the dashboard variables it may use."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    variables: dict[str, str]

    @property
    def name(self) -> str:
        """``dashboard / panel / refId``, for test ids and messages."""
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"

    def expanded(self, **overrides: str) -> str:
        """The expression with every ``$variable`` replaced by its default (or an override)."""
        values = {**BUILTINS, **self.variables, **overrides}

        def replace(match: re.Match[str]) -> str:
            name = next(group for group in match.groups() if group)
            if name not in values:
                raise KeyError(f"{self.name}: ${name} is not a dashboard variable")
            return values[name]

        return _VARIABLE.sub(replace, self.expr)


def dashboard_files() -> list[Path]:
    """The dashboard JSON files Grafana provisions."""
    return sorted(DASHBOARD_FOLDER.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    """One dashboard document."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def default_values(document: dict[str, Any]) -> dict[str, str]:
    """Each variable's default value; "All" becomes the variable's ``allValue``."""
    values = {}
    for variable in document.get("templating", {}).get("list", []):
        current = variable.get("current") or {}
        value = current.get("value", "")
        if isinstance(value, list):
            value = "|".join(value)
        if value == "$__all":
            value = variable.get("allValue") or ".*"
        values[variable["name"]] = str(value)
    return values


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows and their nested panels flattened, rows left out)."""
    for panel in document.get("panels", []):
        if panel.get("type") == "row":
            yield from (nested for nested in panel.get("panels", []) if nested.get("targets"))
        else:
            yield panel


def panel_queries(path: Path) -> list[PanelQuery]:
    """Every PromQL target in one dashboard file."""
    document = load(path)
    variables = default_values(document)
    return [
        PanelQuery(
            dashboard=document["title"],
            panel=panel["title"],
            ref_id=target.get("refId", "A"),
            expr=target["expr"],
            variables=variables,
        )
        for panel in panels(document)
        for target in panel.get("targets", [])
    ]


def all_queries() -> list[PanelQuery]:
    """Every PromQL target of every provisioned dashboard."""
    return [query for path in dashboard_files() for query in panel_queries(path)]
