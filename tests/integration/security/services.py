"""The four services as the security tests build them: apps from their own settings, and the
write endpoints read from each app's OpenAPI document (so a new endpoint is covered the day it
is added)."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.plumbing.settings import HubSettings

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
async def running_app(
    name: str, hub: HubSettings
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service's app with its lifespan running, and an in-process client for it."""
    app = create_app(name, service_settings(name, hub))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            yield app, client


def write_endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every write operation, path parameters filled with ``x-1``."""
    return [
        (method, re.sub(r"\{[^}]+\}", "x-1", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in WRITES
    ]
