"""A running registry app (lifespan, relay) per test, an HTTP client for it, tokens, and a
reader of what reached the registry topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.contracts import CloudEvent, Topic
from services.plumbing.settings import HubSettings
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from services.registry.store import RegistryStore
from tests.support.apps import outbox_drained, running_app
from tests.support.tokens import auth
from tests.support.topics import events_after, events_on


@dataclass
class Registry:
    """One registry app under test."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: HubSettings
    writer: dict[str, str]
    """Authorization header of an editor with ``registry:write``."""

    @property
    def store(self) -> RegistryStore:
        store: RegistryStore = self.app.state.registry_store
        return store

    async def events(self, expect: int) -> list[CloudEvent]:
        """The events on this test's registry topic once ``expect`` of them are there."""
        await outbox_drained(self.app)
        return await events_on(self.settings, Topic.REGISTRY, expect)

    async def events_after(self, seen: list[CloudEvent]) -> list[CloudEvent]:
        """The events beyond ``seen`` that reach the registry topic within the absence window
        (a test asserting that nothing more is published expects none)."""
        await outbox_drained(self.app)
        return await events_after(self.settings, Topic.REGISTRY, seen)


EDITOR = "editor-7f3a"
"""The subject of the fixture's editor token."""


@asynccontextmanager
async def _running(settings: RegistrySettings) -> AsyncIterator[Registry]:
    app = create_app(settings)
    async with running_app(app, "registry") as client:
        yield Registry(
            app, client, settings.hub, auth(settings.hub, "registry:write", subject=EDITOR)
        )


@pytest.fixture
async def registry(hub_settings: HubSettings) -> AsyncIterator[Registry]:
    """An empty registry (no seed)."""
    async with _running(RegistrySettings(hub=hub_settings, seed_on_empty=False)) as running:
        yield running


@pytest.fixture
async def seeded(hub_settings: HubSettings) -> AsyncIterator[Registry]:
    """A registry seeded with the Copenhagen data on start."""
    async with _running(RegistrySettings(hub=hub_settings, seed_on_empty=True)) as running:
        yield running


async def snapshot(registry: Registry) -> dict[str, Any]:
    """Everything a failed request must leave untouched: records, indexes, audits, and the
    outbox's last written id (which any staged event would move, even once relayed)."""
    redis = registry.store.redis
    outbox = registry.settings.key("registry", "outbox")
    keys = sorted(
        key
        for key in await redis.keys(registry.settings.key("registry", "*"))
        if not key.decode().startswith(outbox)
    )
    state: dict[str, Any] = {key: await redis.dump(key) for key in keys}
    if await redis.exists(outbox):
        last = (await redis.xinfo_stream(outbox))["last-generated-id"]
        # The relay creates the stream (empty) when it connects: an empty one staged nothing.
        if last not in (b"0-0", "0-0"):
            state["outbox"] = last
    return state


SITE: dict[str, Any] = {
    "site_id": "site-test",
    "name": "Testbiblioteket",
    "address": {"street": "Testvej 1", "postal_code": "2300", "city": "København S"},
    "district": "amager-vest",
    "latitude": 55.665,
    "longitude": 12.578,
    "owner": "kff",
}

SERVICE: dict[str, Any] = {"code": "passport", "name": "Pas", "general_needs": True}

ENTRY: dict[str, Any] = {
    "entry_id": "entry-test",
    "site_id": "site-test",
    "name": "Borgerservice KVIK Test",
    "kind": "kvik_point",
    "entry_type": "service_and_offers",
    "administration": "okf",
    "coverage": "local",
    "district": "amager-vest",
    "services": ["passport"],
    "staff_help": ["video"],
    "status": "open",
    "opening_hours": {
        "weekly": [{"weekday": d, "opens": "10:00", "closes": "19:00"} for d in range(5)],
        "exceptions": [],
    },
}


async def create_basics(registry: Registry) -> None:
    """A service, a site and an entry at it (three events)."""
    for path, body in (("/services", SERVICE), ("/sites", SITE), ("/entries", ENTRY)):
        response = await registry.client.post(path, json=body, headers=registry.writer)
        assert response.status_code == 201, response.text
