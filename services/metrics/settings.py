"""Settings of the metrics service (environment prefix ``KANALHUB_METRICS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    """Where the metrics service listens; the shared hub settings come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_METRICS_", extra="ignore")

    service: ClassVar[str] = "metrics"
    port: int = Field(default=8004, ge=1, le=65535)
