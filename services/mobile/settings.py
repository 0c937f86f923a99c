"""Settings of the mobile service (environment prefix ``KANALHUB_MOBILE_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class MobileSettings(ServiceSettings):
    """Where the mobile service listens; the shared hub settings come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_MOBILE_", extra="ignore")

    service: ClassVar[str] = "mobile"
    port: int = Field(default=8003, ge=1, le=65535)
