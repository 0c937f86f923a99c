"""deploy/prometheus/rules: promtool accepts the alert rules and their unit tests pass; every
alert has a runbook section and a test that makes it fire and one that keeps it quiet."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.support import DEPLOY, ROOT, load_yaml

RULES = DEPLOY / "prometheus" / "rules"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
REQUIRED_ALERTS = {
    "KioskOffline",
    "DeadLetterGrowing",
    "ConsumerLagHigh",
    "OutboxGrowing",
    "ServiceDown",
    "DigitalShareDropped",
    "DigitalShareBehindDeadline",
}


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> dict[str, dict[str, Any]]:
    alerts: dict[str, dict[str, Any]] = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in alerts, f"{rule['alert']} defined twice"
                    alerts[rule["alert"]] = rule
    return alerts


def _test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.yml"))


def test_promtool_check_rules_accepts_every_rule_file(promtool: str) -> None:
    files = sorted(RULES.glob("*.yml"))
    assert files, "no rule files"
    result = _promtool(promtool, "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", _test_files(), ids=lambda path: path.name)
def test_promtool_test_rules_passes(promtool: str, path: Path) -> None:
    result = _promtool(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_fails_when_an_expectation_is_wrong(
    promtool: str, tmp_path: Path
) -> None:
    # The same tests with one expected label changed must fail: the tests can fail.
    (source,) = [path for path in _test_files() if path.name == "kanalhub-alerts.test.yml"]
    text = source.read_text(encoding="utf-8")
    assert "reason: invalid}" in text
    broken = tmp_path / "tests" / source.name
    broken.parent.mkdir()
    (tmp_path / "rules").symlink_to(RULES)
    broken.write_text(text.replace("reason: invalid}", "reason: other}"), encoding="utf-8")
    result = _promtool(promtool, "test", "rules", str(broken))
    assert result.returncode != 0
    assert "DeadLetterGrowing" in result.stdout + result.stderr


def test_the_issue_s_alerts_exist_with_severity_summary_and_runbook() -> None:
    alerts = _alerts()
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook"] == f"docs/runbooks.md#{name.lower()}", name


def test_every_runbook_link_has_its_section() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for name, rule in _alerts().items():
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor in headings, f"{name}: docs/runbooks.md has no section '## {name}'"


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_files: set[Path] = set()
    for path in _test_files():
        document = load_yaml(path)
        tested_files |= {(path.parent / name).resolve() for name in document["rule_files"]}
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert tested_files == {path.resolve() for path in RULES.glob("*.yml")}
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test keeps quiet"


def test_rules_only_use_metrics_the_services_declare() -> None:
    # A typo in a metric name would make an alert silently never fire. Metric families are
    # declared by name in the services' code (prometheus_client adds _total to counters).
    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "services").rglob("*.py")
    )
    declared = set(re.findall(r'"(kanalhub_\w+)"', sources))
    declared |= {f"{name.removesuffix('_total')}_total" for name in declared}
    for name, rule in _alerts().items():
        for metric in set(re.findall(r"\bkanalhub_\w+", rule["expr"])):
            assert metric in declared, f"{name}: no service declares {metric}"
