"""deploy/k8s: both overlays render with kustomize and validate against the Kubernetes schemas."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import DEPLOY, SERVICE_PORTS

# The oldest Kubernetes minor the manifests must work on (schemas from kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"
OVERLAYS = ("staging", "production")


def _kustomize_command() -> list[str]:
    """``kustomize build`` or the copy of kustomize inside ``kubectl``."""
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    pytest.skip("neither kustomize nor kubectl is installed: cannot render deploy/k8s overlays")


def _render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*_kustomize_command(), str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(overlay name, its rendered resources)."""
    return request.param, _render(request.param)


def _by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    kinds: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for document in documents:
        kinds[document["kind"]][document["metadata"]["name"]] = document
    return kinds


def test_every_resource_is_valid_against_the_kubernetes_schema(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    _, documents = rendered
    assert len(documents) == 17  # ConfigMap + 4 x (Deployment, Service, PDB, HPA)
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_mistake() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = _by_kind(_render("staging"))["Deployment"]["kanalhub-kvik"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "pathh"
    ] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_each_service_has_probes_resources_and_a_stable_instance_id(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, documents = rendered
    deployments = _by_kind(documents)["Deployment"]
    assert set(deployments) == {f"kanalhub-{name}" for name in SERVICE_PORTS}
    for name, port in SERVICE_PORTS.items():
        deployment = deployments[f"kanalhub-{name}"]
        assert deployment["metadata"]["namespace"] == (
            "kanalhub" if overlay == "production" else f"kanalhub-{overlay}"
        )
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"] == [name]
        assert container["image"] == "registry.example.org/kanalhub:0.1.0"
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert set(container["resources"]) == {"requests", "limits"}
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["KANALHUB_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.name"
        )
        assert env[f"KANALHUB_{name.upper()}_HOST"]["value"] == "0.0.0.0"
        assert container["envFrom"] == [{"configMapRef": {"name": "kanalhub-config"}}]
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_each_service_has_a_disruption_budget_an_autoscaler_and_a_service(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = rendered
    kinds = _by_kind(documents)
    config = kinds["ConfigMap"]["kanalhub-config"]["data"]
    partitions = int(config["KANALHUB_TOPIC_PARTITIONS"])
    for name in SERVICE_PORTS:
        deployment = kinds["Deployment"][f"kanalhub-{name}"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        budget = kinds["PodDisruptionBudget"][f"kanalhub-{name}"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert kinds["Service"][f"kanalhub-{name}"]["spec"]["selector"].items() <= labels.items()
        autoscaler = kinds["HorizontalPodAutoscaler"][f"kanalhub-{name}"]
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == f"kanalhub-{name}"
        assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        # Consumers scale through the consumer group only up to the partition count.
        assert autoscaler["spec"]["maxReplicas"] <= partitions


def test_no_secret_value_is_rendered(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, documents = rendered
    assert "Secret" not in _by_kind(documents)
    config = _by_kind(documents)["ConfigMap"]["kanalhub-config"]["data"]
    assert config["KANALHUB_ENVIRONMENT"] == "production"
    assert not any("JWT_SECRET" in key or "REDIS_URL" in key for key in config)
