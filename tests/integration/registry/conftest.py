"""A running registry app (lifespan, relay) per test, an HTTP client for it, tokens, and a
reader of what reached the registry topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from services.contracts import CloudEvent, Topic, decode_event
from services.plumbing.auth import mint_token
from services.plumbing.settings import HubSettings
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from services.registry.store import RegistryStore


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

    async def drain(self, within: float = 30.0) -> None:
        """Wait until the relay published everything in the outbox."""
        runtime = self.app.state.runtime
        await asyncio.wait_for(runtime.kafka_connected.wait(), within)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await runtime.outbox.depth() > 0:
            assert loop.time() < deadline, "the relay did not drain the outbox"
            await asyncio.sleep(0.05)

    async def events(self, expect: int, quiet: float = 1.0) -> list[CloudEvent]:
        """Everything on this test's registry topic: at least ``expect`` events, then whatever
        arrives within ``quiet`` seconds more (so "exactly one" can be checked)."""
        await self.drain()
        consumer = AIOKafkaConsumer(
            self.settings.topic(Topic.REGISTRY),
            bootstrap_servers=self.settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        found: list[CloudEvent] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(found) < expect and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                found.extend(decode_event(r.value) for rs in batch.values() for r in rs)
            quiet_until = loop.time() + quiet
            while loop.time() < quiet_until:
                batch = await consumer.getmany(timeout_ms=200)
                found.extend(decode_event(r.value) for rs in batch.values() for r in rs)
        finally:
            await consumer.stop()
        return found


def auth(settings: HubSettings, *roles: str, subject: str = "editor-7f3a") -> dict[str, str]:
    """An Authorization header with a development token carrying ``roles``."""
    return {"Authorization": f"Bearer {mint_token(settings, subject, roles)}"}


async def _running(settings: RegistrySettings) -> AsyncIterator[Registry]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            yield Registry(app, client, settings.hub, auth(settings.hub, "registry:write"))


@pytest.fixture
async def registry(hub_settings: HubSettings) -> AsyncIterator[Registry]:
    """An empty registry (no seed)."""
    async for running in _running(RegistrySettings(hub=hub_settings, seed_on_empty=False)):
        yield running


@pytest.fixture
async def seeded(hub_settings: HubSettings) -> AsyncIterator[Registry]:
    """A registry seeded with the Copenhagen data on start."""
    async for running in _running(RegistrySettings(hub=hub_settings, seed_on_empty=True)):
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
        state["outbox"] = (await redis.xinfo_stream(outbox))["last-generated-id"]
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
