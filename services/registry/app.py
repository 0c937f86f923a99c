"""Builds the registry service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.plumbing.http import create_service_app
from services.registry.events import HANDLERS
from services.registry.settings import RegistrySettings


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry service with its routes, event handlers and lifespan; connects on startup."""
    return create_service_app(
        settings or RegistrySettings(),
        title="kanalhub Registry",
        description=(
            "The catalogue of sites and entry points: where citizens can reach the "
            "municipality, with opening hours, coverage and co-location. Publishes entry/site"
            " events; every other service learns sites, entries and districts from them."
        ),
        handlers=HANDLERS,
    )
