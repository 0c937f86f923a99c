"""Builds the metrics service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.metrics.events import HANDLERS
from services.metrics.settings import MetricsSettings
from services.plumbing.http import create_service_app


def create_app(settings: MetricsSettings | None = None) -> FastAPI:
    """The metrics service with its routes, event handlers and lifespan; connects on startup."""
    return create_service_app(
        settings or MetricsSettings(),
        title="kanalhub Channel metrics",
        description=(
            "Counts every citizen contact by channel and mode, and shows how close each "
            "district is to 80 % digital self-service. Takes external contact counts from the"
            " digital platform and the contact centre."
        ),
        handlers=HANDLERS,
    )
