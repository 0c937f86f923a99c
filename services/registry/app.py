"""Builds the registry service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.plumbing.http import create_service_app
from services.plumbing.logging import get_logger
from services.plumbing.runtime import ServiceRuntime
from services.registry.api import router
from services.registry.events import HANDLERS
from services.registry.seed import load_seed
from services.registry.settings import RegistrySettings
from services.registry.store import RegistryStore

log = get_logger(__name__)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry service with its routes, event handlers and lifespan; connects on startup."""
    settings = settings or RegistrySettings()

    @asynccontextmanager
    async def registry_lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        store = RegistryStore(runtime.redis, settings.hub, runtime.outbox, settings.source)
        app.state.registry_store = store
        if settings.seeds:
            # Safe with several replicas starting together: seed_if_empty is one transaction
            # that fails for all but the first. The relay publishes the events when Kafka is up.
            seeded = await store.seed_if_empty(load_seed(settings.seed_file))
            log.info("registry seed", seeded=seeded, file=str(settings.seed_file))
        yield

    return create_service_app(
        settings,
        title="kanalhub Registry",
        description=(
            "The catalogue of sites and entry points: where citizens can reach the "
            "municipality, with opening hours, coverage and co-location. Publishes entry/site"
            " events; every other service learns sites, entries and districts from them."
        ),
        handlers=HANDLERS,
        routers=[router],
        extra_lifespan=registry_lifespan,
    )
