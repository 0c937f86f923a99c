"""Seeding on an empty store is on in development and off elsewhere unless set."""

from __future__ import annotations

from services.plumbing.settings import Environment, HubSettings
from services.registry.settings import RegistrySettings


def test_seeding_defaults_to_on_in_development_only() -> None:
    assert RegistrySettings(hub=HubSettings(environment=Environment.DEVELOPMENT)).seeds
    assert not RegistrySettings(hub=HubSettings(environment=Environment.TEST)).seeds


def test_seeding_can_be_turned_off_in_development() -> None:
    settings = RegistrySettings(
        hub=HubSettings(environment=Environment.DEVELOPMENT), seed_on_empty=False
    )
    assert not settings.seeds
