"""Builds the metrics service's FastAPI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.metrics import api, desk, intake, page, usage
from services.metrics.events import handlers
from services.metrics.exposition import render
from services.metrics.settings import MetricsSettings
from services.metrics.share_events import run_share_events
from services.metrics.store import MetricsStore
from services.plumbing.http import create_service_app
from services.plumbing.runtime import ServiceRuntime


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """The metrics service with its routes, event handlers and lifespan; connects on startup.

    Events are applied a whole fetched batch per transaction (``transaction_per_batch``): the
    handlers add to counters, and those that read (a report's previous figure, a visit's last
    state) do it in server-side scripts that run in order inside the transaction. A handler
    that needs committed state (a help event's entry) raises when it is missing, and the batch
    falls back to one transaction per event.
    """
    settings = settings or MetricsSettings()
    store = MetricsStore(settings.hub)

    @asynccontextmanager
    async def metrics_lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        app.state.metrics_store = store
        stopping = asyncio.Event()
        share_events = asyncio.create_task(
            run_share_events(store, runtime.redis, runtime.outbox, settings, stopping),
            name="metrics-share-events",
        )
        try:
            yield
        finally:
            stopping.set()
            await share_events

    return create_service_app(
        settings,
        title="kanalhub Channel metrics",
        description=(
            "Counts every citizen contact by channel and mode, and shows how close each "
            "district is to 80 % digital self-service. Takes external contact counts from the"
            " digital platform and the contact centre."
        ),
        handlers=handlers(settings.hub),
        routers=[api.router, intake.router, desk.router, page.router, usage.router],
        extra_lifespan=metrics_lifespan,
        transaction_per_batch=True,
        scrape_extra=render,
    )
