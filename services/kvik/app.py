"""Builds the kvik service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.kvik.events import HANDLERS
from services.kvik.settings import KvikSettings
from services.plumbing.http import create_service_app


def create_app(settings: KvikSettings | None = None) -> FastAPI:
    """The kvik service with its routes, event handlers and lifespan; connects on startup."""
    return create_service_app(
        settings or KvikSettings(),
        title="kanalhub KVIK",
        description=(
            "Borgerservice KVIK: kiosk devices in libraries and culture houses post self-"
            "service sessions here; staff help by video or phone. Publishes session and kiosk"
            " events."
        ),
        handlers=HANDLERS,
    )
