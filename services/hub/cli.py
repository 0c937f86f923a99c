"""The ``kanalhub`` command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="kanalhub: multi-channel citizen-service hub. `kanalhub run` starts everything embedded.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


class ServiceName(StrEnum):
    """The four services; each is one folder under services/."""

    REGISTRY = "registry"
    KVIK = "kvik"
    MOBILE = "mobile"
    METRICS = "metrics"


SETTINGS_CLASS = {
    ServiceName.REGISTRY: "services.registry.settings:RegistrySettings",
    ServiceName.KVIK: "services.kvik.settings:KvikSettings",
    ServiceName.MOBILE: "services.mobile.settings:MobileSettings",
    ServiceName.METRICS: "services.metrics.settings:MetricsSettings",
}


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@app.command()
def run(
    simulate: Annotated[
        bool, typer.Option(help="Also send simulated kiosk and intake traffic, live.")
    ] = False,
) -> None:
    """Start the whole hub on this machine: broker, Valkey, the four services (Ctrl-C stops)."""
    from services.hub.launcher import LauncherSettings, run_hub

    settings = LauncherSettings()
    if simulate:
        settings = settings.model_copy(update={"simulate": True})
    raise typer.Exit(run_hub(settings))


@app.command()
def serve(service: ServiceName) -> None:
    """Run one service in the foreground (what the launcher and the container image call)."""
    import uvicorn
    from pydantic import ValidationError

    try:
        settings = _load(SETTINGS_CLASS[service])()
    except ValidationError as error:
        # A refused setting is an operator's mistake: one clear line, no traceback, exit 2.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        typer.echo(f"kanalhub serve {service.value}: refusing to start: {problems}", err=True)
        raise typer.Exit(2) from None
    create_app = _load(f"services.{service.value}.app:create_app")
    # uvicorn shuts down gracefully on SIGTERM (consumers commit, the relay drains) and then
    # re-raises the signal to whatever handler was there before, which would end the process
    # as "killed by SIGTERM" (143). A completed graceful shutdown is a clean exit: 0.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    from services.plumbing.header_limits import bounded_http_protocol

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # httptools reads a request head of any size; this protocol answers 431 past a bound.
        http=bounded_http_protocol(settings.max_header_bytes),
        log_config=None,  # our structlog configuration owns the log format
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def tokens(
    ttl_hours: Annotated[int, typer.Option(help="How long the tokens stay valid.")] = 12,
) -> None:
    """Print development bearer tokens, one per role (refused in production)."""
    from services.plumbing.auth import development_tokens
    from services.plumbing.settings import HubSettings

    table = Table(title="development tokens (Authorization: Bearer <token>)")
    table.add_column("role")
    table.add_column("token", overflow="fold")
    for role, token in development_tokens(HubSettings(), ttl_seconds=ttl_hours * 3600).items():
        table.add_row(role, token)
    console.print(table)


@app.command()
def token(
    role: Annotated[str, typer.Argument(help="A role, e.g. registry:write, or all-roles.")],
) -> None:
    """Print one development token and nothing else: ``TOKEN=$(kanalhub token metrics:read)``."""
    from services.plumbing.auth import development_tokens
    from services.plumbing.settings import HubSettings

    tokens = development_tokens(HubSettings())
    if role not in tokens:
        console.print(f"[red]unknown role {role!r}[/red]; choose one of: {', '.join(tokens)}")
        raise typer.Exit(2)
    print(tokens[role])


@app.command()
def schemas(
    root: Annotated[Path, typer.Option(help="Repository root to write docs/events into.")] = Path(),
) -> None:
    """Regenerate the JSON Schemas and the AsyncAPI document from the event models."""
    from services.contracts.schema_export import write

    for path in write(root):
        console.print(f"wrote {path}")


@app.command()
def dashboards(
    root: Annotated[
        Path, typer.Option(help="Repository root to write deploy/grafana into.")
    ] = Path(),
    check: Annotated[
        bool, typer.Option(help="Only report files that differ; exit 1 if any.")
    ] = False,
) -> None:
    """Regenerate the Grafana dashboards (deploy/grafana/dashboards/*.json) from their code."""
    try:
        from services.hub.dashboards import stale, write
    except ModuleNotFoundError as error:  # grafana-foundation-sdk is a dev dependency
        typer.echo(f"kanalhub dashboards needs the dev extras ({error}): make setup", err=True)
        raise typer.Exit(2) from None

    if check:
        differing = stale(root)
        for name in differing:
            console.print(f"[red]out of date:[/red] {name} (run `make dashboards`)")
        raise typer.Exit(1 if differing else 0)
    for path in write(root):
        console.print(f"wrote {path}")


@app.command()
def topics() -> None:
    """Create the contract topics on the configured broker (idempotent)."""
    from services.plumbing.settings import HubSettings
    from services.plumbing.topics import ensure_topics

    settings = HubSettings()
    created = asyncio.run(ensure_topics(settings))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")


@app.command("kiosk-sim")
def kiosk_sim(
    kiosks: Annotated[int, typer.Option(min=1, help="Simulated kiosks.")] = 10,
    rate: Annotated[float, typer.Option(min=0.1, help="Sessions per second, all kiosks.")] = 5.0,
    duration: Annotated[float, typer.Option(min=1, help="Seconds to run.")] = 60.0,
    offline: Annotated[
        float, typer.Option(min=0, max=1, help="Chance per session that a kiosk goes offline.")
    ] = 0.01,
    kvik_url: str = "http://127.0.0.1:8002",
    registry_url: str = "http://127.0.0.1:8001",
) -> None:
    """Simulate kiosks at the registry's KVIK points posting sessions to a running hub."""
    from rich.progress import Progress

    from services.kvik.simulator import Tally, simulate

    with Progress(console=console) as bar:
        task = bar.add_task("kiosk sessions", total=duration)

        def show(tally: Tally, elapsed: float) -> None:
            bar.update(
                task,
                completed=elapsed,
                description=f"posted {tally.posted}, uploaded {tally.uploaded}, "
                f"refused {tally.refused}, offline spells {tally.offline_spells}",
            )

        tally = asyncio.run(
            simulate(kvik_url, registry_url, kiosks, rate, duration, offline, progress=show)
        )
    console.print(
        f"sessions posted {tally.posted}, uploaded after offline {tally.uploaded}, "
        f"refused {tally.refused}"
    )


registry_app = typer.Typer(help="Registry operations.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")


@registry_app.command("replay")
def registry_replay() -> None:
    """Re-publish the current state of every registry service, site and entry (for a new
    consumer); the registry's outbox relay sends them."""
    from services.registry.commands import replay
    from services.registry.settings import RegistrySettings

    count = asyncio.run(replay(RegistrySettings()))
    console.print(f"staged {count} events in the registry outbox")


@app.command()
def simulate(
    days: Annotated[int, typer.Option(help="Replay this many days up to yesterday.")] = 365,
    realtime: Annotated[
        bool, typer.Option(help="After 8 weeks of history, post today's sessions live.")
    ] = False,
    speed: Annotated[float, typer.Option(help="Realtime: this many times the clock.")] = 1.0,
    seed: Annotated[int, typer.Option(help="The same seed gives the same traffic.")] = 2026,
) -> None:
    """Drive the running hub with Copenhagen's traffic: KVIK kiosks at the registry's KVIK
    points, the digital platform's and contact centre's daily counts, the citizen-service
    centres' desk tickets and visits at the mobile stops (docs/simulation.md)."""
    from rich.progress import Progress

    from services.hub.simulate import Simulator
    from services.plumbing.settings import HubSettings

    async def go(bar: Progress) -> None:
        task = bar.add_task("simulating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        from services.hub.launcher import SERVICES as DEFAULT_PORTS
        from services.hub.simulate import Endpoints

        def url(name: str) -> str:
            port = os.environ.get(f"KANALHUB_{name.upper()}_PORT", DEFAULT_PORTS[name])
            return f"http://127.0.0.1:{port}"

        endpoints = Endpoints(
            registry=url("registry"), kvik=url("kvik"), mobile=url("mobile"), metrics=url("metrics")
        )
        simulator = Simulator(HubSettings(), endpoints, seed=seed)
        try:
            if realtime:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                loop.add_signal_handler(signal.SIGINT, stop.set)
                loop.add_signal_handler(signal.SIGTERM, stop.set)
                books = await simulator.realtime(stop, speed=speed, progress=progress)
            else:
                today = dt.datetime.now(dt.UTC).date()
                first = today - dt.timedelta(days=days)
                books = await simulator.replay(first, today - dt.timedelta(days=1), progress)
        finally:
            await simulator.close()
        console.print(
            f"accepted: {books.contacts:,} contacts ({books.sessions_accepted:,} of "
            f"{books.sessions_sent:,} KVIK sessions, {books.intake_lines:,} intake lines, "
            f"{books.desk_served:,} of {books.desk_tickets:,} desk tickets served, "
            f"{books.mobile_contacts:,} contacts at {books.mobile_visits:,} mobile visits)"
        )

    with Progress(console=console) as bar:
        asyncio.run(go(bar))


metrics_app = typer.Typer(help="Metrics operations.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("rebuild")
def metrics_rebuild() -> None:
    """Drop the metrics aggregates and recompute them from the topics (stop the metrics
    service first)."""
    from rich.progress import Progress

    from services.metrics.commands import rebuild
    from services.metrics.settings import MetricsSettings

    with Progress(console=console) as bar:
        task = bar.add_task("replaying events", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        count = asyncio.run(rebuild(MetricsSettings(), progress))
    console.print(f"rebuilt the aggregates from {count} events")


@metrics_app.command("redrive")
def metrics_redrive(
    reason: Annotated[
        str | None, typer.Option(help="Only dead letters with this reason, e.g. unknown_entry.")
    ] = None,
) -> None:
    """Re-publish the metrics service's dead letters to their original topics."""
    from services.metrics.commands import redrive
    from services.metrics.settings import MetricsSettings

    count = asyncio.run(redrive(MetricsSettings(), reason))
    console.print(f"re-published {count} dead letters")


kvik_app = typer.Typer(help="KVIK operations.", no_args_is_help=True)
app.add_typer(kvik_app, name="kvik")
kvik_quarantine_app = typer.Typer(
    help="Items the KVIK loops (sweeper, liveness, escalation) set aside: list, release, drop.",
    no_args_is_help=True,
)
kvik_app.add_typer(kvik_quarantine_app, name="quarantine")


@kvik_quarantine_app.command("list")
def kvik_quarantine_list() -> None:
    """Show every quarantined item, one a line: item, since, reason (tab-separated)."""
    from services.kvik.commands import quarantine_list
    from services.kvik.settings import KvikSettings

    items = asyncio.run(quarantine_list(KvikSettings()))
    if not items:
        console.print("the quarantine is empty")
        return
    # Plain lines, not a table: the whole item id must survive a narrow terminal, for release
    # and drop to take it (and for cut/grep).
    for item in items:
        typer.echo(f"{item.field}\t{item.at}\t{item.reason}")


@kvik_quarantine_app.command("release")
def kvik_quarantine_release(
    item: Annotated[str, typer.Argument(help="The item as listed: <loop>:<id>.")],
) -> None:
    """Put an item back into its loop (after fixing the cause); it is tried next round."""
    from services.kvik.commands import quarantine_release
    from services.kvik.settings import KvikSettings

    if not asyncio.run(quarantine_release(KvikSettings(), item)):
        console.print(f"no quarantined item {item}")
        raise typer.Exit(1)
    console.print(f"released {item}")


@kvik_quarantine_app.command("drop")
def kvik_quarantine_drop(
    item: Annotated[str, typer.Argument(help="The item as listed: <loop>:<id>.")],
) -> None:
    """Forget an item for good; a quarantined session's record is deleted with it."""
    from services.kvik.commands import quarantine_drop
    from services.kvik.settings import KvikSettings

    if not asyncio.run(quarantine_drop(KvikSettings(), item)):
        console.print(f"no quarantined item {item}")
        raise typer.Exit(1)
    console.print(f"dropped {item}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
