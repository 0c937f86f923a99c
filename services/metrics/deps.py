"""The FastAPI dependencies the metrics routes share: what the app's lifespan put on its state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore
from services.plumbing.runtime import ServiceRuntime


def _store(request: Request) -> MetricsStore:
    store: MetricsStore = request.app.state.metrics_store
    return store


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _settings(request: Request) -> MetricsSettings:
    settings: MetricsSettings = request.app.state.settings
    return settings


StoreDep = Annotated[MetricsStore, Depends(_store)]
RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
SettingsDep = Annotated[MetricsSettings, Depends(_settings)]
