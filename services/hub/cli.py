"""The ``kanalhub`` command line."""

from __future__ import annotations

import asyncio
import importlib
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
def run() -> None:
    """Start the whole hub on this machine: broker, Valkey, the four services (Ctrl-C stops)."""
    from services.hub.launcher import LauncherSettings, run_hub

    raise typer.Exit(run_hub(LauncherSettings()))


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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
