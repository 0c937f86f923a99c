"""deploy/prometheus: promtool accepts the config and its rule files; all four are scraped."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unit.deploy.support import DEPLOY, SERVICE_PORTS, compose, host_path, load_yaml

CONFIG = DEPLOY / "prometheus" / "prometheus.yml"


def test_promtool_accepts_the_config_and_its_rule_files(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "config", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_rejects_a_broken_config(promtool: str, tmp_path: Path) -> None:
    broken = tmp_path / "prometheus.yml"
    broken.write_text("scrape_configs:\n  - job_name: x\n    scrape_interval: soon\n")
    result = subprocess.run(
        [promtool, "check", "config", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


def test_it_scrapes_the_four_services_on_their_ports() -> None:
    config = load_yaml(CONFIG)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "kanalhub"]
    assert job["metrics_path"] == "/metrics"
    targets = {
        group["labels"]["service"]: target
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {name: f"{name}:{port}" for name, port in SERVICE_PORTS.items()}


def test_rule_files_are_loaded_from_the_rules_folder_compose_mounts() -> None:
    config = load_yaml(CONFIG)
    assert config["rule_files"] == ["rules/*.yml"]
    assert (DEPLOY / "prometheus" / "rules").is_dir()
    prometheus = compose()["services"]["prometheus"]
    assert host_path(prometheus, "/etc/prometheus/prometheus.yml") == CONFIG
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
