"""Builds the mobile service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.mobile.events import HANDLERS
from services.mobile.settings import MobileSettings
from services.plumbing.http import create_service_app


def create_app(settings: MobileSettings | None = None) -> FastAPI:
    """The mobile service with its routes, event handlers and lifespan; connects on startup."""
    return create_service_app(
        settings or MobileSettings(),
        title="kanalhub Mobile citizen service",
        description=(
            "Planning of mobile citizen-service visits (elderly centres, stations, shopping "
            "centres), bookings and the contacts staff record there. Publishes visit and "
            "contact events."
        ),
        handlers=HANDLERS,
    )
