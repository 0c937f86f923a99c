"""``kanalhub run``: the whole hub on one machine, no Docker.

Starts the embedded Kafka-protocol broker and a Valkey server (data under ``./var``, AOF on),
creates the topics, starts the four services as separate processes on ports 8001-8004, waits
until every ``/readyz`` answers 200, prints where everything is, and on Ctrl-C (SIGINT) or
SIGTERM stops everything in reverse order, leaving no process behind.

While it runs it supervises every child: a broker, Valkey or service that exits is started
again with backoff (``RestartWithBackoff``) on the same data directory, while the others keep
running - the services answer ``/readyz`` 503 and hold their writes in the outbox until the
broker or Valkey is back. A child that keeps crashing is left stopped after
``restart_limit`` restarts in a row, and the console says so; the rest of the hub stays up.
Each child's log is rotated at the start of a run (``name.log.1`` .. ``.3`` keep earlier runs).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from services.contracts import Topic
from services.hub.embedded import (
    DEFAULT_BROKER,
    BrokerKind,
    ManagedProcess,
    PortInUseError,
    ProcessStartError,
    RestartWithBackoff,
    ValkeyProcess,
    make_broker,
    port_in_use,
)
from services.plumbing.auth import development_tokens
from services.plumbing.backoff import Backoff
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
    restart_limit: int = Field(default=5, ge=0)
    """Restarts in a row of a crashed broker, Valkey or service before it is left stopped."""
    restart_delay_seconds: float = Field(default=1.0, gt=0)
    """The first delay before such a restart; it doubles with every crash in a row."""
    restart_max_delay_seconds: float = Field(default=30.0, gt=0)
    """The longest delay between restarts."""
    restart_stable_seconds: float = Field(default=60.0, gt=0)
    """A restarted child up this long is well again: its count of restarts starts afresh."""


class ServiceProcess(ManagedProcess):
    """One kanalhub service as a child process (``kanalhub serve <name>``); ready = /readyz 200."""

    port: int  # a server: always has one

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
            "KANALHUB_TOPIC_REPLICATION": str(hub.topic_replication),
            "KANALHUB_INSTANCE_ID": instance,
            # the broker's workarounds, if it needs any (KafkaBroker.client_settings)
            "KANALHUB_OUTBOX_RESEND_WINDOW_SECONDS": str(hub.outbox_resend_window_seconds),
            "KANALHUB_EMPTY_FETCH_PAUSE_SECONDS": str(hub.empty_fetch_pause_seconds),
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
    ).model_copy(update=broker.client_settings())
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
        supervisors = [
            _server_supervisor(launcher, process) for process in [broker, valkey, *services]
        ]
        if launcher.simulate:
            # A client: when it finishes (its day is over) or keeps failing, the hub goes on.
            simulator = _start_simulator(launcher, hub, services, data_dir / "logs")
            started.append(simulator.process)
            supervisors.append(simulator)
        _supervise(supervisors, stop)
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


def _server_supervisor(launcher: LauncherSettings, process: ManagedProcess) -> RestartWithBackoff:
    """The supervisor of a child that was started (and is ready) and should run as long as the
    hub: any exit is a crash."""
    supervisor = RestartWithBackoff(
        process,
        restarts=launcher.restart_limit,
        backoff=Backoff(
            initial=launcher.restart_delay_seconds, maximum=launcher.restart_max_delay_seconds
        ),
        finished_on_success=False,
        stable_after=launcher.restart_stable_seconds,
    )
    supervisor.mark_launched()
    return supervisor


def _supervise(supervisors: Sequence[RestartWithBackoff], stop: threading.Event) -> None:
    """Keep the children up until a stop is requested, printing what happens to them.

    A crashed broker or Valkey does not stop the services: they answer ``/readyz`` 503 and keep
    their writes in the outbox until it is back; a service left stopped after its restarts is
    reported, and the rest of the hub stays up (Ctrl-C stops it).
    """
    while not stop.is_set():
        for supervisor in supervisors:
            message = supervisor.check()
            if message is None:
                continue
            # Never wrapped: a log path or a port must stay whole and greppable.
            console.print(message, markup=False, highlight=False, soft_wrap=True)
            if supervisor.left_stopped and not supervisor.finished_on_success:
                console.print(
                    f"[red]{supervisor.process.name} keeps failing and is left stopped[/red]; "
                    "the rest of the hub keeps running, but whatever needs it answers 503. "
                    "Read its log, fix the cause, then stop (Ctrl-C) and start the hub again.",
                    soft_wrap=True,
                )
        time.sleep(0.5)


def simulator_env(hub: HubSettings, services: Sequence[ServiceProcess]) -> dict[str, str]:
    """The simulator's environment: this environment, the broker and Valkey (its tokens are
    signed with the hub's settings) and the port of every service it sends traffic to."""
    env = dict(os.environ)
    env.update(
        {
            "KANALHUB_KAFKA_BOOTSTRAP": hub.kafka_bootstrap,
            "KANALHUB_REDIS_URL": hub.redis_url,
            **{f"KANALHUB_{service.name.upper()}_PORT": str(service.port) for service in services},
        }
    )
    return env


def _start_simulator(
    launcher: LauncherSettings,
    hub: HubSettings,
    services: Sequence[ServiceProcess],
    log_dir: Path,
) -> RestartWithBackoff:
    """Start ``kanalhub simulate --realtime`` once the services have the registry's catalogue.

    The simulator is a client of the services: it listens on no port (so no port is checked),
    and its failure does not stop the hub - it is restarted with backoff a few times, then left
    stopped (see the console and its log)."""
    console.print("waiting until kvik, mobile and metrics have the registry's catalogue")
    try:
        asyncio.run(registry_copied(hub, {s.name: [s] for s in services}, first_start=False))
    except TimeoutError as error:
        # Traffic now may meet correct refusals (an entry kvik does not know yet); the
        # simulator then fails and is restarted, by which time the copies are complete.
        console.print(f"[yellow]{error}[/yellow]; starting the simulator anyway")
    process = ManagedProcess(
        name="simulator",
        host=launcher.host,
        port=None,
        data_dir=log_dir,
        command=[sys.executable, "-m", "services.hub.cli", "simulate", "--realtime"],
        env=simulator_env(hub, services),
    )
    supervisor = RestartWithBackoff(process)
    supervisor.start()
    console.print(
        f"simulated traffic running (8 weeks of history, then live); log: {process.log_path}"
    )
    return supervisor


async def registry_copied(
    hub: HubSettings,
    services: Mapping[str, Sequence[ServiceProcess]],
    within: float = 120.0,
    first_start: bool = True,
) -> None:
    """Wait until every service that keeps a copy of the registry has consumed all the
    registry published (its seed of Copenhagen): before that, kvik refuses kiosks at entries it
    does not know yet and metrics refuses intake for services not yet in its catalogue - correct
    answers, but not what simulated traffic should meet.

    ``first_start``: the registry was empty, so it must have published something (its seed).
    A hub started again on its data publishes nothing new; its copies are already complete once
    the registry's outbox is empty and the consumers have what was published since the start
    (the seed is staged before the registry answers /readyz, so the outbox is never empty
    too early).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    topic = hub.topic(Topic.REGISTRY)
    redis = Redis.from_url(hub.redis_url, socket_timeout=10)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                pending = await redis.xlen(hub.key("registry", "outbox"))
                published = await _scrape_sum(
                    client, services["registry"], "kanalhub_events_published_total", topic
                )
                behind = [
                    name
                    for name in ("kvik", "mobile", "metrics")
                    if await _scrape_sum(
                        client, services[name], "kanalhub_events_consumed_total", topic
                    )
                    < published
                ]
                if pending == 0 and (published > 0 or not first_start) and not behind:
                    return
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"registry copies incomplete after {within:g} s: {published:g} "
                        f"published, {pending} in its outbox, behind: {behind}"
                    )
                await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


async def _scrape_sum(
    client: httpx.AsyncClient, replicas: Sequence[ServiceProcess], metric: str, topic: str
) -> float:
    """The sum of ``metric``'s samples for ``topic`` over the replicas' Prometheus scrapes."""
    total = 0.0
    for process in replicas:
        response = await client.get(f"{process.url}/metrics")
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == metric and sample.labels.get("topic") == topic:
                    total += sample.value
    return total


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
