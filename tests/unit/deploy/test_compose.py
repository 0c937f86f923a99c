"""docker-compose.yml: valid against the Compose Specification schema, pinned, healthy, durable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.unit.deploy.support import DEPLOY, SERVICE_PORTS, compose

SCHEMA_FILE = DEPLOY / "schemas" / "compose-spec.json"


def _one_shots(services: dict[str, Any]) -> set[str]:
    """Services that run to completion: everything that depends on them waits for success.

    Being depended on with ``service_completed_successfully`` by a long-running service is
    also what lets ``docker compose up --wait`` (``make up``) accept their exit 0.
    """
    awaited = {
        name
        for service in services.values()
        for name, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_completed_successfully"
    }
    return {name for name in awaited if services[name].get("restart") == "no"}


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    errors = sorted(
        Draft7Validator(schema).iter_errors(compose()), key=lambda error: list(error.path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors
    )


def test_the_schema_check_catches_a_mistake() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    broken = compose()
    broken["services"]["kafka"]["healthcheck"]["interval"] = ["10s"]
    broken["services"]["valkey"]["restart_policy"] = "always"
    assert len(list(Draft7Validator(schema).iter_errors(broken))) >= 2


def test_every_image_tag_is_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image")
        assert image, f"{name}: no image (build-only services cannot be pinned)"
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    one_shots = _one_shots(services)
    assert one_shots == {"topic-init"}
    for name, service in services.items():
        if name in one_shots:
            continue
        check = service.get("healthcheck")
        assert check, f"{name}: no healthcheck"
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck {check['test']}"


def test_services_wait_for_what_they_need() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition.get("condition") in {
                "service_healthy",
                "service_completed_successfully",
            }, f"{name} -> {dependency}: {condition}"
    for name in SERVICE_PORTS:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["valkey"]["condition"] == "service_healthy"
        assert depends["topic-init"]["condition"] == "service_completed_successfully"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_the_four_services_run_the_image_as_the_container_entrypoint_does() -> None:
    services = compose()["services"]
    for name, port in SERVICE_PORTS.items():
        service = services[name]
        assert service["command"] == [name]
        assert "entrypoint" not in service  # the image's ENTRYPOINT ["kanalhub", "serve"]
        environment = service["environment"]
        assert environment["KANALHUB_ENVIRONMENT"] == "production"
        assert environment["KANALHUB_LOG_FORMAT"] == "json"
        assert environment[f"KANALHUB_{name.upper()}_HOST"] == "0.0.0.0"
        assert environment["KANALHUB_INSTANCE_ID"] == f"{name}-1"
        assert service["ports"] == [f"{port}:{port}"]
    assert services["topic-init"]["entrypoint"] == ["kanalhub", "topics"]


def test_no_secret_is_written_into_the_compose_file() -> None:
    services = compose()["services"]
    for name in [*SERVICE_PORTS, "topic-init"]:
        secret = services[name]["environment"]["KANALHUB_JWT_SECRET"]
        assert secret.startswith("${KANALHUB_JWT_SECRET:?"), f"{name}: {secret!r}"
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_kafka_is_kraft_without_auto_created_topics() -> None:
    environment = compose()["services"]["kafka"]["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert compose()["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_valkey_keeps_an_aof_fsynced_on_every_write() -> None:
    command = compose()["services"]["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


@pytest.mark.parametrize(
    ("service", "volume"),
    [
        ("kafka", "kafka-data"),
        ("valkey", "valkey-data"),
        ("prometheus", "prometheus-data"),
        ("grafana", "grafana-data"),
    ],
)
def test_data_lives_in_named_volumes(service: str, volume: str) -> None:
    document = compose()
    assert volume in document["volumes"]
    mounted = [str(v).split(":")[0] for v in document["services"][service]["volumes"]]
    assert volume in mounted
