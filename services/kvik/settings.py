"""Settings of the kvik service (environment prefix ``KANALHUB_KVIK_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class KvikSettings(ServiceSettings):
    """Where the kvik service listens; the shared hub settings come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_KVIK_", extra="ignore")

    service: ClassVar[str] = "kvik"
    port: int = Field(default=8002, ge=1, le=65535)
