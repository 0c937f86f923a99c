"""Settings of the registry service (environment prefix ``KANALHUB_REGISTRY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import Environment, ServiceSettings

DEFAULT_SEED_FILE = Path(__file__).parent / "data" / "copenhagen.json"


class RegistrySettings(ServiceSettings):
    """Where the registry service listens; the shared hub settings come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_REGISTRY_", extra="ignore")

    service: ClassVar[str] = "registry"
    port: int = Field(default=8001, ge=1, le=65535)
    # Load the Copenhagen seed data when the store is empty at start-up. Unset: only in
    # development, so `make run` starts with a catalogue and tests and production start empty.
    seed_on_empty: bool | None = None
    seed_file: Path = DEFAULT_SEED_FILE

    @property
    def seeds(self) -> bool:
        """Whether to seed an empty store at start-up."""
        if self.seed_on_empty is not None:
            return self.seed_on_empty
        return self.hub.environment is Environment.DEVELOPMENT
