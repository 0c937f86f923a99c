"""Builds the mobile service's FastAPI app."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.mobile.api import install_refusal_handlers, router
from services.mobile.domain import TravelRule
from services.mobile.events import handlers
from services.mobile.settings import MobileSettings
from services.mobile.store import MobileStore
from services.plumbing.http import create_service_app
from services.plumbing.runtime import ServiceRuntime


def create_app(settings: MobileSettings | None = None) -> FastAPI:
    """The mobile service with its routes, event handlers and lifespan; connects on startup."""
    settings = settings or MobileSettings()

    @asynccontextmanager
    async def mobile_lifespan(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        rule = TravelRule(
            speed_kmh=settings.travel_speed_kmh,
            buffer=dt.timedelta(minutes=settings.travel_buffer_minutes),
        )
        app.state.mobile_store = MobileStore(
            runtime.redis, settings.hub, runtime.outbox, rule, settings.source
        )
        yield

    app = create_service_app(
        settings,
        title="kanalhub Mobile citizen service",
        description=(
            "Planning of mobile citizen-service visits (elderly centres, stations, shopping "
            "centres), bookings and the contacts staff record there. Publishes visit and "
            "contact events; learns sites, opening hours and district shares from events."
        ),
        handlers=handlers(settings.hub),
        routers=[router],
        extra_lifespan=mobile_lifespan,
    )
    install_refusal_handlers(app)
    return app
