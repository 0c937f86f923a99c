"""The pure parts of the embedded components: ports, messages, command lines. No child runs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.hub.embedded import (
    BROKER_KINDS,
    DEFAULT_BROKER,
    BrokerKind,
    ManagedProcess,
    PortInUseError,
    ValkeyProcess,
    client_env,
    free_port,
    make_broker,
    port_in_use,
)
from services.plumbing.settings import HubSettings


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that a socket listens on for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_port_someone_listens_on_is_in_use(listening: int) -> None:
    assert port_in_use("127.0.0.1", listening)


def test_a_port_nobody_holds_is_not_in_use() -> None:
    assert not port_in_use("127.0.0.1", free_port())


def test_a_port_is_free_again_once_its_listener_closes() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
    assert not port_in_use("127.0.0.1", port)


def test_port_in_use_error_names_the_port_the_suspects_and_the_setting() -> None:
    error = PortInUseError("127.0.0.1", 9092, "KANALHUB_EMBEDDED_BROKER_PORT")
    assert str(error) == (
        "port 9092 on 127.0.0.1 is already in use - is another kanalhub (or a Kafka/Redis) "
        "running? Set KANALHUB_EMBEDDED_BROKER_PORT to choose another port"
    )


def test_start_refuses_a_taken_port_before_launching_anything(
    listening: int, tmp_path: Path
) -> None:
    process = ManagedProcess(
        name="registry",
        host="127.0.0.1",
        port=listening,
        data_dir=tmp_path / "logs",
        command=["false"],
    )
    with pytest.raises(PortInUseError, match="KANALHUB_REGISTRY_PORT"):
        process.start()
    assert process.pid is None
    assert not process.log_path.exists()


def test_each_component_names_the_setting_that_moves_its_port(tmp_path: Path) -> None:
    assert make_broker("noida", 1, tmp_path).port_setting == "KANALHUB_EMBEDDED_BROKER_PORT"
    assert make_broker("tansu", 1, tmp_path).port_setting == "KANALHUB_EMBEDDED_BROKER_PORT"
    assert make_broker("kafka", 1, tmp_path).port_setting == "KANALHUB_EMBEDDED_BROKER_PORT"
    assert ValkeyProcess(1, tmp_path).port_setting == "KANALHUB_EMBEDDED_VALKEY_PORT"


def test_an_unknown_broker_kind_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="noida, tansu, kafka"):
        make_broker("redpanda", 9092, tmp_path)  # type: ignore[arg-type]


def test_the_default_broker_is_one_of_the_kinds() -> None:
    assert DEFAULT_BROKER in BROKER_KINDS


def test_brokers_advertise_a_bootstrap_on_localhost(tmp_path: Path) -> None:
    assert make_broker("noida", 19092, tmp_path).bootstrap == "127.0.0.1:19092"


def test_valkey_runs_in_the_foreground_with_an_aof_fsynced_on_every_write(tmp_path: Path) -> None:
    command = ValkeyProcess(6390, tmp_path).command
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "always"
    assert options["--daemonize"] == "no"
    assert options["--save"] == ""
    assert options["--dir"] == str(tmp_path.resolve())


def test_valkey_url_points_at_database_zero(tmp_path: Path) -> None:
    assert ValkeyProcess(6390, tmp_path).url == "redis://127.0.0.1:6390/0"


def test_apache_kafka_needs_no_workaround_and_the_defaults_are_off(tmp_path: Path) -> None:
    assert make_broker("kafka", 1, tmp_path).client_settings() == {}
    defaults = HubSettings()
    assert defaults.outbox_resend_window_seconds == 0
    assert defaults.empty_fetch_pause_seconds == 0


@pytest.mark.parametrize("kind", ["noida", "tansu"])
def test_a_weaker_broker_turns_on_the_resend_window_and_fetch_pacing_in_its_services(
    kind: BrokerKind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_broker(kind, 1, tmp_path).client_settings()
    assert settings["outbox_resend_window_seconds"] > 0
    assert settings["empty_fetch_pause_seconds"] > 0
    for name, value in client_env(settings).items():
        monkeypatch.setenv(name, value)  # as a service process started by the launcher
    read = HubSettings()
    assert read.outbox_resend_window_seconds == settings["outbox_resend_window_seconds"]
    assert read.empty_fetch_pause_seconds == settings["empty_fetch_pause_seconds"]
