"""The four services as the security tests build them: apps from their own settings, and the
write endpoints read from each app's OpenAPI document (so a new endpoint is covered the day it
is added)."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
from fastapi import FastAPI
from starlette.routing import BaseRoute, Route

from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from tests.support.apps import running_app

SERVICES = {
    "registry": ("services.registry.app", "services.registry.settings:RegistrySettings"),
    "kvik": ("services.kvik.app", "services.kvik.settings:KvikSettings"),
    "mobile": ("services.mobile.app", "services.mobile.settings:MobileSettings"),
    "metrics": ("services.metrics.app", "services.metrics.settings:MetricsSettings"),
}
WRITES = ("post", "put", "patch", "delete")


def service_settings(name: str, hub: HubSettings, **overrides: Any) -> Any:
    """The service's own settings class on ``hub``, with ``overrides``."""
    module, _, cls = SERVICES[name][1].partition(":")
    return getattr(importlib.import_module(module), cls)(hub=hub, **overrides)


def create_app(name: str, settings: Any) -> FastAPI:
    """The service's app, as its ``create_app`` builds it."""
    app: FastAPI = importlib.import_module(SERVICES[name][0]).create_app(settings)
    return app


@asynccontextmanager
async def running_service(
    name: str, hub: HubSettings, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service's app on its own settings with ``overrides``, running and connected to
    Kafka, and an in-process client for it."""
    app = create_app(name, service_settings(name, hub, **overrides))
    async with running_app(app, name) as client:
        yield app, client


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation the app serves: those of its OpenAPI
    document and the routes left out of it (the docs pages, the metrics dashboard page)."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    found.update(_unlisted(app.routes, ""))
    return found


def _unlisted(candidates: Sequence[BaseRoute], prefix: str) -> set[tuple[str, str]]:
    """The routes left out of the OpenAPI document, including those of included routers
    (FastAPI 0.165 keeps an included router as one ``_IncludedRouter`` entry)."""
    found: set[tuple[str, str]] = set()
    for route in candidates:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = route.include_context  # type: ignore[attr-defined]
            found |= _unlisted(included.routes, prefix + context.prefix)
        elif isinstance(route, Route) and not route.include_in_schema:
            found.update(
                (method, prefix + route.path) for method in route.methods or () if method != "HEAD"
            )
    return found


def fill(path: str) -> str:
    """``path`` with every path parameter filled with ``x-1``."""
    return re.sub(r"\{[^}]+\}", "x-1", path)


def write_endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every write operation, path parameters filled with ``x-1``."""
    return [
        (method, re.sub(r"\{[^}]+\}", "x-1", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in WRITES
    ]


async def staged(app: FastAPI) -> int:
    """How many events the service ever staged in its outbox: the stream's ``entries-added``,
    which only a new event moves (the depth also falls when the relay ships one, which on a
    loaded machine can happen in the middle of a test)."""
    runtime: ServiceRuntime = app.state.runtime
    if not await runtime.redis.exists(runtime.outbox.stream):
        return 0
    info = await runtime.redis.xinfo_stream(runtime.outbox.stream)
    return int(info["entries-added"])


async def redis_state(app: FastAPI, prefix: str) -> dict[bytes, Any]:
    """What a refused request must not touch: every key of the test's prefix and its dump;
    streams (the outbox) by their last generated id - their dump also holds the relay's
    bookkeeping, which moves on its own - and leases and dedupe marks not at all."""
    runtime: ServiceRuntime = app.state.runtime
    state: dict[bytes, Any] = {}
    # The services' client answers bytes (no decode_responses).
    keys = cast(list[bytes], await runtime.redis.keys(f"{prefix}:*"))
    for key in sorted(keys):
        if key.endswith(b":lease") or b":seen:" in key:
            continue
        if await runtime.redis.type(key) == b"stream":
            last = (await runtime.redis.xinfo_stream(key))["last-generated-id"]
            # the relay creates the empty stream when it starts (its group, MKSTREAM): on a
            # loaded machine that can be after the snapshot; an empty stream staged nothing
            if last not in (b"0-0", "0-0"):
                state[key] = last
        else:
            state[key] = await runtime.redis.dump(key)
    return state
