"""deploy/prometheus: promtool accepts the config and its rule files; all four are scraped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.unit.deploy.support import DEPLOY, SERVICE_PORTS, compose, host_path, load_yaml

CONFIG = DEPLOY / "prometheus" / "prometheus.yml"


SCRAPE_TOKEN_FILE = "/run/secrets/scrape_token"
"""Where compose mounts the scrape token for Prometheus (docs/security.md, "Public surfaces")."""


def test_promtool_accepts_the_config_and_its_rule_files(promtool: str, tmp_path: Path) -> None:
    # promtool insists the scrape token file exists: checked on a copy that points it (and the
    # rule files, relative to the config) at real paths; nothing else is changed.
    config = load_yaml(CONFIG)
    token = tmp_path / "scrape_token"
    token.write_text("a-token")
    for job in config["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == SCRAPE_TOKEN_FILE
            job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(CONFIG.parent / rule) for rule in config["rule_files"]]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_services_scrape_is_sent_with_the_token_compose_gives_prometheus() -> None:
    config = load_yaml(CONFIG)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "kanalhub"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": SCRAPE_TOKEN_FILE}
    stack = compose()
    assert "scrape_token" in stack["services"]["prometheus"]["secrets"]
    assert stack["secrets"]["scrape_token"] == {"environment": "KANALHUB_PROMETHEUS_TOKEN"}
    for name in SERVICE_PORTS:
        assert "KANALHUB_PROMETHEUS_TOKEN" in stack["services"][name]["environment"]


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
