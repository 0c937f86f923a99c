"""``kanalhub run``: the whole hub on one machine, no Docker.

Starts the embedded Kafka-protocol broker and a Valkey server (data under ``./var``, AOF on),
creates the topics, starts the four services as separate processes on ports 8001-8004, waits
until every ``/readyz`` answers 200, prints where everything is, and on Ctrl-C (SIGINT) or
SIGTERM stops everything in reverse order, leaving no process behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from services.hub.embedded import (
    DEFAULT_BROKER,
    BrokerKind,
    ManagedProcess,
    PortInUseError,
    ProcessStartError,
    ValkeyProcess,
    make_broker,
    port_in_use,
)
from services.plumbing.auth import development_tokens
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

console = Console(stderr=False)

SERVICES: dict[str, int] = {"registry": 8001, "kvik": 8002, "mobile": 8003, "metrics": 8004}


class LauncherSettings(BaseSettings):
    """What ``kanalhub run`` starts and where (environment prefix ``KANALHUB_EMBEDDED_``)."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_EMBEDDED_", extra="ignore")

    broker: BrokerKind = DEFAULT_BROKER
    broker_port: int = Field(default=9092, ge=1, le=65535)
    valkey_port: int = Field(default=6379, ge=1, le=65535)
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    ready_timeout_seconds: float = Field(default=60.0, gt=0)
    topic_partitions: int = Field(default=3, ge=1)
    simulate: bool = False
    """Also run ``kanalhub simulate --realtime`` once the hub is ready, for a live demo."""


class ServiceProcess(ManagedProcess):
    """One kanalhub service as a child process (``kanalhub serve <name>``); ready = /readyz 200."""

    def __init__(self, name: str, port: int, host: str, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(
            name=name,
            host=host,
            port=port,
            data_dir=log_dir,
            command=[sys.executable, "-m", "services.hub.cli", "serve", name],
            env=env,
            port_setting=f"KANALHUB_{name.upper()}_PORT",
        )

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://{self.host}:{self.port}"

    def probe(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


class _StopRequested(Exception):
    pass


def service_env(
    hub: HubSettings, name: str, port: int, host: str, instance: str = "embedded"
) -> dict[str, str]:
    """The environment of one service process: this environment plus where the broker, Valkey
    and the service itself are. ``instance`` is the replica's stable name (static group
    membership: a restarted replica takes its partitions back at once)."""
    env = dict(os.environ)
    env.update(
        {
            "KANALHUB_KAFKA_BOOTSTRAP": hub.kafka_bootstrap,
            "KANALHUB_REDIS_URL": hub.redis_url,
            "KANALHUB_TOPIC_PARTITIONS": str(hub.topic_partitions),
            "KANALHUB_INSTANCE_ID": instance,
            f"KANALHUB_{name.upper()}_PORT": str(port),
            f"KANALHUB_{name.upper()}_HOST": host,
        }
    )
    return env


def _service_ports() -> dict[str, int]:
    return {
        name: int(os.environ.get(f"KANALHUB_{name.upper()}_PORT", port))
        for name, port in SERVICES.items()
    }


def _check_ports(launcher: LauncherSettings, service_ports: dict[str, int]) -> list[str]:
    wanted = {
        f"broker ({launcher.broker})": (launcher.broker_port, "KANALHUB_EMBEDDED_BROKER_PORT"),
        "valkey": (launcher.valkey_port, "KANALHUB_EMBEDDED_VALKEY_PORT"),
        **{name: (port, f"KANALHUB_{name.upper()}_PORT") for name, port in service_ports.items()},
    }
    return [
        f"port {port} for {what} is already in use (another kanalhub, Kafka or Redis?). "
        f"Stop it, or choose another port with {variable}=..."
        for what, (port, variable) in wanted.items()
        if port_in_use(launcher.host, port)
    ]


def run_hub(launcher: LauncherSettings) -> int:
    """Run the embedded hub until SIGINT/SIGTERM; returns the process exit code."""
    service_ports = _service_ports()
    problems = _check_ports(launcher, service_ports)
    if problems:
        for problem in problems:
            console.print(f"[red]cannot start:[/red] {problem}")
        return 2

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return
        stop.set()
        raise _StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    data_dir = launcher.data_dir.resolve()
    broker = make_broker(
        launcher.broker, launcher.broker_port, data_dir / f"broker-{launcher.broker}"
    )
    valkey = ValkeyProcess(port=launcher.valkey_port, data_dir=data_dir / "valkey")
    hub = HubSettings(
        kafka_bootstrap=broker.bootstrap,
        redis_url=valkey.url,
        topic_partitions=launcher.topic_partitions,
    )
    started: list[ManagedProcess] = []
    exit_code = 0
    try:
        with console.status("starting the embedded hub") as status:
            status.update(f"starting the {launcher.broker} broker on port {launcher.broker_port}")
            broker.start()
            started.append(broker)
            status.update(
                f"starting Valkey on port {launcher.valkey_port} (AOF in {valkey.data_dir})"
            )
            valkey.start()
            started.append(valkey)
            status.update("creating topics")
            asyncio.run(ensure_topics(hub))
            services = [
                ServiceProcess(
                    name,
                    port,
                    launcher.host,
                    service_env(hub, name, port, launcher.host),
                    data_dir / "logs",
                )
                for name, port in service_ports.items()
            ]
            for service in services:
                status.update(f"starting {service.name}")
                service.launch()
                started.append(service)
            status.update("waiting for every /readyz to answer 200")
            deadline = time.monotonic() + launcher.ready_timeout_seconds
            for service in services:
                service.wait_ready(max(1.0, deadline - time.monotonic()))
        _print_welcome(launcher, hub, services, broker.log_path, data_dir)
        if launcher.simulate:
            simulator = _start_simulator(launcher, hub, service_ports, data_dir / "logs")
            started.append(simulator)
            console.print(f"simulated kiosks and intake running; log: {simulator.log_path}")
        while True:
            for process in started:
                # the simulator may finish (its day is over); the hub goes on without it
                if not process.is_running and process.name != "simulator":
                    console.print(
                        f"[red]{process.name} exited unexpectedly[/red]; see {process.log_path}. "
                        "Stopping the hub."
                    )
                    return 1
            time.sleep(0.5)
    except _StopRequested as signal_name:
        console.print(f"\n{signal_name} received, stopping")
    except (PortInUseError, ProcessStartError) as error:
        console.print(f"[red]cannot start:[/red] {error}")
        exit_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(started):
            console.print(f"stopping {process.name}")
            process.stop()
        console.print("all stopped")
    return exit_code


def _start_simulator(
    launcher: LauncherSettings, hub: HubSettings, ports: dict[str, int], log_dir: Path
) -> ManagedProcess:
    env = service_env(hub, "simulator", 0, launcher.host)
    simulator = ManagedProcess(
        name="simulator",
        host=launcher.host,
        port=ports["kvik"],
        data_dir=log_dir,
        command=[sys.executable, "-m", "services.hub.cli", "simulate", "--realtime"],
        env=env,
        port_setting="KANALHUB_KVIK_PORT",
    )
    simulator.launch()
    return simulator


def _print_welcome(
    launcher: LauncherSettings,
    hub: HubSettings,
    services: list[ServiceProcess],
    broker_log: Path,
    data_dir: Path,
) -> None:
    table = Table(title="kanalhub is running")
    table.add_column("what")
    table.add_column("where")
    for service in services:
        table.add_row(service.name, f"{service.url}/docs  (metrics: {service.url}/metrics)")
    table.add_row(f"broker ({launcher.broker})", hub.kafka_bootstrap)
    table.add_row("valkey", hub.redis_url)
    table.add_row("data and logs", str(data_dir))
    console.print(table)
    tokens = development_tokens(hub)
    token_file = data_dir / "dev-tokens.env"
    token_file.write_text(
        "".join(
            f"export KANALHUB_TOKEN_{role.upper().replace(':', '_').replace('-', '_')}={token}\n"
            for role, token in tokens.items()
        )
    )
    token_file.chmod(0o600)
    console.print(
        "\nDevelopment tokens (valid 12 h), one per role - use as "
        "[bold]-H 'Authorization: Bearer <token>'[/bold]:"
    )
    for role, token in tokens.items():
        # Plain lines, never wrapped, so a token can be copied from the terminal as it is.
        console.print(f"  {role:15} {token}", soft_wrap=True, highlight=False)
    console.print(f"Also in {token_file} (source it) and from `kanalhub token <role>`.\n")
    console.print("Press Ctrl-C to stop everything.")
