"""deploy/grafana/dashboards: the checked-in JSON is what deploy/grafana/build_dashboards.py
generates (a build-time script, loaded here by its path)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.deploy.dashboard_queries import (
    DASHBOARD_FOLDER,
    all_queries,
    dashboard_files,
    load,
    panels,
)
from tests.unit.deploy.support import DEPLOY, ROOT


def _builder() -> ModuleType:
    """deploy/grafana/build_dashboards.py as a module (it is a script, not in a package)."""
    path = DEPLOY / "grafana" / "build_dashboards.py"
    spec = importlib.util.spec_from_file_location("build_dashboards", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dashboards = _builder()


def test_checked_in_dashboards_equal_the_generated_ones() -> None:
    differing = dashboards.stale(ROOT)
    assert differing == [], (
        f"{', '.join(differing)} differ from deploy/grafana/build_dashboards.py: run "
        "`make dashboards` and commit the JSON"
    )


def test_the_drift_check_notices_a_hand_edited_file(tmp_path: Path) -> None:
    dashboards.write(tmp_path)
    assert dashboards.stale(tmp_path) == []
    edited = tmp_path / dashboards.DASHBOARD_DIR / "channel-shift.json"
    document = json.loads(edited.read_text(encoding="utf-8"))
    document["title"] = "edited in the UI"
    edited.write_text(json.dumps(document, indent=2), encoding="utf-8")
    (tmp_path / dashboards.DASHBOARD_DIR / "kvik-operations.json").unlink()
    assert dashboards.stale(tmp_path) == ["channel-shift.json", "kvik-operations.json"]


def test_the_folder_holds_exactly_the_generated_dashboards() -> None:
    assert {path.name for path in dashboard_files()} == set(dashboards.DASHBOARDS)
    assert not list(DASHBOARD_FOLDER.glob("*/*.json")), "no hand-made dashboards in subfolders"


def test_uids_and_titles_are_unique_and_stable() -> None:
    documents = [load(path) for path in dashboard_files()]
    uids = [document["uid"] for document in documents]
    assert len(set(uids)) == len(uids) == 5
    assert all(uid.startswith("kanalhub-") for uid in uids)
    assert {document["title"] for document in documents} == {
        "Channel shift",
        "KVIK operations",
        "Mobile citizen service",
        "Buildings and entry points",
        "Pipeline health",
    }


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.stem)
def test_every_panel_queries_the_provisioned_prometheus(path: Path) -> None:
    document = load(path)
    shown = list(panels(document))
    assert shown
    for panel in shown:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus"
            assert "kanalhub_" in target["expr"] or target["expr"].startswith("up{")
    ids = [panel["id"] for panel in document["panels"]]
    assert len(set(ids)) == len(ids), "panel ids must be unique"


def test_every_variable_a_query_uses_is_defined() -> None:
    queries = all_queries()
    assert len(queries) > 30
    for query in queries:
        expanded = query.expanded()  # raises KeyError on an undefined $variable
        assert "$" not in expanded, query.name


def test_district_dashboards_have_the_ten_districts_and_all_selected() -> None:
    for path in dashboard_files():
        document = load(path)
        variables = {variable["name"]: variable for variable in document["templating"]["list"]}
        if document["title"] == "Pipeline health":
            assert "service" in variables
            continue
        district = variables["district"]
        assert district["includeAll"]
        # ".+" keeps series without a district label (other services' metrics) out of "All".
        assert district["allValue"] == ".+"
        assert district["current"]["value"] == "$__all"
        assert len(district["query"].split(",")) == 10
        assert "Østerbro : osterbro" in district["query"]


def test_the_headline_panels_draw_the_configured_target() -> None:
    # The headline is the general-needs share; the target line and colours come from the
    # metrics service's configured target (kanalhub_target_share_ratio), not from the JSON.
    document = load(DASHBOARD_FOLDER / "channel-shift.json")
    headline_panels = [
        panel
        for panel in panels(document)
        if any(
            "kanalhub_digital_share_by_needs_ratio" in t["expr"] and 'needs="general"' in t["expr"]
            for t in panel["targets"]
        )
    ]
    assert len(headline_panels) >= 3
    for panel in headline_panels:
        (config,) = [t for t in panel["transformations"] if t["id"] == "configFromData"]
        target = next(t for t in panel["targets"] if t["refId"] == config["options"]["configRefId"])
        assert "kanalhub_target_share_ratio" in target["expr"]
        assert config["options"]["mappings"] == [{"fieldName": "Value", "handlerKey": "threshold1"}]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert len(steps) == 2, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    over_time = [panel for panel in headline_panels if panel["type"] == "timeseries"]
    assert over_time
    assert over_time[0]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] in (
        "line",
        "dashed",
    )


def test_channel_shift_shows_target_deadline_and_weeks_behind() -> None:
    exprs = [
        t["expr"]
        for panel in panels(load(DASHBOARD_FOLDER / "channel-shift.json"))
        for t in panel["targets"]
    ]
    for metric in (
        "kanalhub_target_share_ratio",
        "kanalhub_target_deadline_timestamp_seconds",
        "kanalhub_forecast_weeks_behind_deadline",
        'needs="special"',
        "kanalhub_digital_share_ratio",
    ):
        assert any(metric in expr for expr in exprs), metric


def test_docs_list_every_dashboard_and_panel() -> None:
    text = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for path in dashboard_files():
        document = load(path)
        assert f"## {document['title']} (`{document['uid']}`)" in text
        for panel in panels(document):
            assert f"| {panel['title']} |" in text, f"docs/dashboards.md misses {panel['title']}"


def test_the_script_writes_and_checks_the_dashboards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dashboards.main(["--check", "--root", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().out
    assert dashboards.main(["--root", str(tmp_path)]) == 0
    assert dashboards.stale(tmp_path) == []
    assert dashboards.main(["--check", "--root", str(ROOT)]) == 0


def test_business_figures_are_counted_once_however_many_metrics_replicas_run() -> None:
    # The metrics service's figures come from Redis: every replica exposes the same values, so
    # a query must drop the replica labels (max without instance, ...) before it sums.
    plumbing = (ROOT / "services" / "plumbing" / "metrics.py").read_text(encoding="utf-8")
    per_process = set(re.findall(r'"(kanalhub_\w+)"', plumbing))
    checked = 0
    for query in all_queries():
        for metric in set(re.findall(r"\bkanalhub_\w+", query.expr)):
            family = re.sub(r"_(bucket|sum|count)$", "", metric)
            if family in per_process:
                continue
            checked += 1
            assert re.search(
                rf"max without \(instance[^)]*\) \((\w+\()?{metric}[{{\[]", query.expr
            ), f"{query.name}: {metric} is not deduplicated across metrics replicas"
    assert checked > 20


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.stem)
def test_the_layout_is_one_grafana_renders_as_generated(path: Path) -> None:
    document = load(path)
    assert document["schemaVersion"] >= 39
    assert [a["builtIn"] for a in document["annotations"]["list"]] == [1]
    boxes = []
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert min(grid["x"], grid["w"] - 1, grid["h"] - 1) >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the grid"
        boxes.append((panel["title"], grid["x"], grid["y"], grid["w"], grid["h"]))
    for i, (title, x, y, w, h) in enumerate(boxes):
        for other, x2, y2, w2, h2 in boxes[i + 1 :]:
            overlap = x < x2 + w2 and x2 < x + w and y < y2 + h2 and y2 < y + h
            assert not overlap, f"{title} overlaps {other}"
