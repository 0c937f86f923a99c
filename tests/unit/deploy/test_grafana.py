"""deploy/grafana: provisioning files parse and every path they point to exists in the repo."""

from __future__ import annotations

import json

from tests.unit.deploy.support import DEPLOY, compose, host_path, load_yaml

PROVISIONING = DEPLOY / "grafana" / "provisioning"


def test_compose_mounts_the_provisioning_folders_grafana_reads() -> None:
    grafana = compose()["services"]["grafana"]
    assert host_path(grafana, "/etc/grafana/provisioning") == PROVISIONING
    for kind in ("datasources", "dashboards"):
        assert (PROVISIONING / kind).is_dir()
        assert list((PROVISIONING / kind).glob("*.yml")), f"no {kind} provisioning file"


def test_the_datasource_is_the_compose_prometheus() -> None:
    services = compose()["services"]
    files = sorted((PROVISIONING / "datasources").glob("*.yml"))
    sources = [source for path in files for source in load_yaml(path)["datasources"]]
    (prometheus,) = [source for source in sources if source["type"] == "prometheus"]
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert "prometheus" in services


def test_every_dashboard_provider_path_exists_and_its_dashboards_parse() -> None:
    grafana = compose()["services"]["grafana"]
    files = sorted((PROVISIONING / "dashboards").glob("*.yml"))
    providers = [provider for path in files for provider in load_yaml(path)["providers"]]
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        folder = host_path(grafana, provider["options"]["path"])
        assert folder is not None, f"{provider['options']['path']} is not mounted from the repo"
        assert folder.is_dir(), f"{folder} does not exist"
        assert folder == DEPLOY / "grafana" / "dashboards"
        for dashboard in folder.rglob("*.json"):
            document = json.loads(dashboard.read_text(encoding="utf-8"))
            assert isinstance(document, dict), dashboard
            assert document.get("title"), f"{dashboard}: a dashboard needs a title"
