"""The FastAPI dependencies the metrics routes share: what the app's lifespan put on its state."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Depends, Request
from pydantic import AfterValidator, BeforeValidator

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


FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(2999, 12, 31)
"""The days a question may name: far beyond any data, and far from the calendar's ends (a week,
month or forecast horizon around 9999-12-31 does not exist)."""

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: object) -> object:
    # pydantic would read a number, or a string of digits, as Unix time: a day is written
    # YYYY-MM-DD, nothing else.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ValueError("Expected a calendar day, YYYY-MM-DD")
    return value


def _within_the_calendar(day: dt.date) -> dt.date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"Expected a day from {FIRST_DAY} to {LAST_DAY}")
    return day


Day = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(_within_the_calendar)]
"""A calendar day as ``YYYY-MM-DD`` between :data:`FIRST_DAY` and :data:`LAST_DAY`."""
