"""The ``kanalhub`` command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import signal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rich.progress import Progress

    from services.hub.simulator.driver import Simulator

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
        # httptools reads a request head of any size, however slowly it comes; this protocol
        # answers 431 past a size bound and 408 past a time bound.
        http=bounded_http_protocol(
            settings.max_header_bytes, header_timeout_seconds=settings.header_timeout_seconds
        ),
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
def topics() -> None:
    """Create the contract topics on the configured broker (idempotent)."""
    from services.plumbing.settings import HubSettings
    from services.plumbing.topics import ensure_topics

    settings = HubSettings()
    created = asyncio.run(ensure_topics(settings))
    console.print(f"created: {', '.join(created) or 'none (all exist)'}")


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
    kiosks: Annotated[
        int,
        typer.Option(
            min=0, help="Live kiosks instead: this many post sessions at --rate for --duration."
        ),
    ] = 0,
    rate: Annotated[
        float, typer.Option(min=0.1, help="Live kiosks: sessions per second, all kiosks.")
    ] = 5.0,
    duration: Annotated[float, typer.Option(min=1, help="Live kiosks: seconds to run.")] = 60.0,
    offline: Annotated[
        float,
        typer.Option(min=0, max=1, help="Live kiosks: chance per session of going offline."),
    ] = 0.01,
) -> None:
    """Drive the running hub with Copenhagen's traffic: KVIK kiosks at the registry's KVIK
    points, the digital platform's and contact centre's daily counts, the citizen-service
    centres' desk tickets and visits at the mobile stops (docs/simulation.md). With
    ``--kiosks N``: only N live kiosks posting sessions, going offline now and then."""
    from rich.progress import Progress

    from services.hub.simulator.driver import Endpoints, Simulator
    from services.plumbing.settings import HubSettings

    async def go(bar: Progress) -> None:
        task = bar.add_task("simulating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        from services.hub.launcher import SERVICES as DEFAULT_PORTS

        def url(name: str) -> str:
            port = os.environ.get(f"KANALHUB_{name.upper()}_PORT", DEFAULT_PORTS[name])
            return f"http://127.0.0.1:{port}"

        endpoints = Endpoints(
            registry=url("registry"), kvik=url("kvik"), mobile=url("mobile"), metrics=url("metrics")
        )
        simulator = Simulator(HubSettings(), endpoints, seed=seed)
        try:
            if kiosks:
                await _live_kiosks(bar, simulator, kiosks, rate, duration, offline)
                return
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


async def _live_kiosks(
    bar: Progress, simulator: Simulator, kiosks: int, rate: float, duration: float, offline: float
) -> None:
    """``simulate --kiosks``: the live kiosks, with their tally on the progress line. Not
    seeded: every run sends new session ids."""
    from services.hub.simulator.live import Tally, run_live_kiosks

    task = bar.add_task("kiosk sessions", total=duration)

    def show(tally: Tally, elapsed: float) -> None:
        bar.update(
            task,
            completed=elapsed,
            description=f"posted {tally.posted}, uploaded {tally.uploaded}, "
            f"refused {tally.refused}, offline spells {tally.offline_spells}",
        )

    tally = await run_live_kiosks(simulator, kiosks, rate, duration, offline, progress=show)
    console.print(
        f"sessions posted {tally.posted}, uploaded after offline {tally.uploaded}, "
        f"refused {tally.refused}"
    )


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


outbox_app = typer.Typer(help="Outbox operations.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
outbox_quarantine_app = typer.Typer(
    help="Outbox entries a service's relay set aside (malformed, or refused by the broker for "
    "good): list, release, drop.",
    no_args_is_help=True,
)
outbox_app.add_typer(outbox_quarantine_app, name="quarantine")
OutboxService = Annotated[ServiceName, typer.Option("--service", help="Whose outbox.")]
QuarantinedId = Annotated[str, typer.Argument(help="The quarantined entry's id, as listed.")]


def _service_settings(service: ServiceName) -> Any:
    from pydantic import ValidationError

    try:
        return _load(SETTINGS_CLASS[service])()
    except ValidationError as error:
        console.print(f"[red]the {service.value} settings are refused:[/red] {error}")
        raise typer.Exit(2) from None


def _on_outbox(service: ServiceName, work: Any) -> Any:
    """Run ``work(outbox)`` against ``service``'s outbox, with a client closed afterwards."""
    from services.plumbing.outbox import Outbox
    from services.plumbing.runtime import connect_redis

    settings = _service_settings(service)

    async def go() -> Any:
        redis = connect_redis(settings)
        try:
            return await work(Outbox(redis, settings.hub, settings.service))
        finally:
            await redis.aclose()

    return asyncio.run(go())


@outbox_quarantine_app.command("list")
def outbox_quarantine_list(service: OutboxService) -> None:
    """Show the quarantined outbox entries of a service, oldest first (no payload values)."""
    from services.plumbing.outbox_quarantine import quarantined

    entries = _on_outbox(service, quarantined)
    if not entries:
        console.print(f"the {service.value} outbox quarantine is empty")
        return
    table = Table(title=f"{service.value} outbox quarantine ({len(entries)})")
    table.add_column("id", no_wrap=True)  # release and drop take it whole
    table.add_column("quarantined at")
    table.add_column("outbox entry", no_wrap=True)
    table.add_column("event type")
    table.add_column("reason")
    for entry in entries:
        table.add_row(entry.id, entry.at, entry.entry_id, entry.type, entry.reason)
    console.print(table)


@outbox_quarantine_app.command("release")
def outbox_quarantine_release(
    service: OutboxService,
    entry: QuarantinedId,
    set_fields: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Replace or add a field before releasing, NAME=VALUE (repeatable), "
            "e.g. --set key=visit-42.",
        ),
    ] = None,
) -> None:
    """Put a quarantined entry back into the outbox for the relay to send (refused while it
    would be quarantined again)."""
    from services.plumbing.outbox_quarantine import NotQuarantined, StillMalformed, release

    changes: dict[str, str] = {}
    for item in set_fields or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            console.print(f"[red]--set takes NAME=VALUE, not {item!r}[/red]")
            raise typer.Exit(2)
        changes[name] = value
    try:
        new_id = _on_outbox(service, lambda outbox: release(outbox, outbox.topics, entry, changes))
    except NotQuarantined:
        console.print(f"no quarantined entry {entry} in the {service.value} outbox")
        raise typer.Exit(1) from None
    except StillMalformed as error:
        console.print(
            f"[red]not released:[/red] entry {entry} would be quarantined again "
            f"({error.reason}); fix the field with --set NAME=VALUE, or drop it"
        )
        raise typer.Exit(1) from None
    console.print(f"released {entry} into the {service.value} outbox as {new_id}")


@outbox_quarantine_app.command("drop")
def outbox_quarantine_drop(service: OutboxService, entry: QuarantinedId) -> None:
    """Delete a quarantined entry for good: its event is never published."""
    from services.plumbing.outbox_quarantine import NotQuarantined, drop

    try:
        _on_outbox(service, lambda outbox: drop(outbox, entry))
    except NotQuarantined:
        console.print(f"no quarantined entry {entry} in the {service.value} outbox")
        raise typer.Exit(1) from None
    console.print(f"dropped {entry} from the {service.value} outbox quarantine")


deadletters_app = typer.Typer(
    help="Events consumers could not process (the dead-letter topic): list, release, drop.",
    no_args_is_help=True,
)
app.add_typer(deadletters_app, name="deadletters")
DeadLetterRef = Annotated[
    str, typer.Argument(help="The dead letter as listed: <partition>:<offset>.")
]


def _on_deadletters(work: Any, *, producer: bool = False) -> Any:
    """Run ``work(settings, redis[, producer])`` with clients closed afterwards."""
    from redis.asyncio import Redis

    from services.plumbing.producer import EventProducer
    from services.plumbing.settings import HubSettings

    settings = HubSettings()

    async def go() -> Any:
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
        sender = EventProducer(settings, client_id="kanalhub-deadletters")
        try:
            if not producer:
                return await work(settings, redis)
            await sender.start()
            return await work(settings, redis, sender)
        finally:
            await sender.stop()
            await redis.aclose()

    return asyncio.run(go())


@deadletters_app.command("list")
def deadletters_list(
    group: Annotated[
        str | None, typer.Option(help="Only this consumer group, e.g. kanalhub.metrics.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only this reason, e.g. handler_failed.")
    ] = None,
) -> None:
    """Show the dead letters not yet released or dropped."""
    from rich.progress import Progress

    from services.plumbing.deadletters import list_deadletters

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("reading the dead-letter topic", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        letters = _on_deadletters(
            lambda settings, redis: list_deadletters(
                settings, redis, group=group, reason=reason, progress=progress
            )
        )
    if not letters:
        console.print("no dead letters to handle")
        return
    table = Table(title=f"dead letters ({len(letters)})")
    table.add_column("dead letter", no_wrap=True)  # release and drop take it whole
    table.add_column("failed at")
    table.add_column("group")
    table.add_column("reason")
    table.add_column("from", overflow="fold")
    table.add_column("detail", overflow="fold")
    for letter in letters:
        table.add_row(
            letter.ref, letter.failed_at, letter.group, letter.reason, letter.origin, letter.detail
        )
    console.print(table)


@deadletters_app.command("release")
def deadletters_release(ref: DeadLetterRef) -> None:
    """Re-publish a dead letter's record to its original topic (after fixing the cause);
    consumers dedupe by event id, so releasing twice is harmless."""
    from services.plumbing.deadletters import NoSuchDeadLetter, NotReleasable, release

    try:
        letter = _on_deadletters(
            lambda settings, redis, sender: release(settings, redis, sender, ref), producer=True
        )
    except (NoSuchDeadLetter, NotReleasable) as error:
        console.print(f"[red]not released:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"released {ref} to {letter.origin.rsplit(':', 2)[0]}")


@deadletters_app.command("drop")
def deadletters_drop(ref: DeadLetterRef) -> None:
    """Give up on a dead letter: `list` no longer shows it (it stays on the topic)."""
    from services.plumbing.deadletters import NoSuchDeadLetter, drop

    try:
        _on_deadletters(lambda settings, redis: drop(settings, redis, ref))
    except NoSuchDeadLetter as error:
        console.print(f"[red]not dropped:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"dropped {ref}")


privacy_app = typer.Typer(help="Personal data operations.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("pseudonymise")
def privacy_pseudonymise(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would change; write nothing.")
    ] = False,
) -> None:
    """Replace raw token subjects stored before pseudonymous ids (audit trails, visit
    histories, overrides, series revisions, taken help requests) with pseudonymous ids;
    a second run changes nothing (services/hub/privacy.py)."""
    from rich.progress import Progress, TaskID

    from services.hub.privacy import RecordKind, pseudonymise_configured

    with Progress(console=console) as bar:
        tasks: dict[RecordKind, TaskID] = {}

        def progress(kind: RecordKind, done: int, total: int) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(kind.value, total=total)
            bar.update(tasks[kind], completed=done, total=total)

        summary = asyncio.run(pseudonymise_configured(dry_run=dry_run, progress=progress))
    table = Table(title="pseudonymise" + (" (dry run: nothing written)" if dry_run else ""))
    changed = "would change" if dry_run else "changed"
    table.add_column("records")
    for column in ("scanned", changed, "ids", "skipped"):
        table.add_column(column, justify="right")
    for kind, tally in summary.items():
        table.add_row(
            kind.value,
            str(tally.scanned),
            str(tally.changed),
            str(tally.replaced),
            str(tally.skipped),
        )
    console.print(table)
    if any(tally.skipped for tally in summary.values()):
        console.print("[yellow]skipped records could not be read or kept changing[/yellow]")
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
