"""Settings of the registry service (environment prefix ``KANALHUB_REGISTRY_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Where the registry service listens; the shared hub settings come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_REGISTRY_", extra="ignore")

    service: ClassVar[str] = "registry"
    port: int = Field(default=8001, ge=1, le=65535)
