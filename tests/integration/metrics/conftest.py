"""A running metrics app (lifespan, consumer, relay) per test, an HTTP client, tokens, a
producer standing in for the kvik and mobile services, and waits on what the consumer did."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.contracts import CloudEvent
from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings
from services.plumbing.producer import EventProducer
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from tests.support.apps import running_app
from tests.support.tokens import auth


@dataclass
class Metrics:
    """One metrics app under test."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: HubSettings
    producer: EventProducer
    reader: dict[str, str]
    """Authorization header with ``metrics:read``."""
    ingester: dict[str, str]
    """Authorization header with ``metrics:ingest``."""

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    async def publish(self, *events: CloudEvent) -> None:
        """Publish events as their own service would."""
        for event in events:
            await self.producer.publish(event)

    async def handled(self) -> int:
        """How many distinct events the consumer has stored (its dedupe marks)."""
        return len(await self.runtime.redis.keys(self.settings.key("metrics", "seen", "*")))

    async def wait_handled(self, count: int, within: float = 20.0) -> None:
        """Wait until ``count`` distinct events are stored."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self.handled() < count:
            assert loop.time() < deadline, f"only {await self.handled()} of {count} handled"
            await asyncio.sleep(0.05)

    async def nothing_staged(self) -> bool:
        """True when nothing was ever written to the outbox (so no event was published)."""
        stream = self.runtime.outbox.stream
        if not await self.runtime.redis.exists(stream):
            return True
        info = await self.runtime.redis.xinfo_stream(stream)
        return info["last-generated-id"] in (b"0-0", "0-0")

    async def share(self, **params: str) -> dict[str, Any]:
        """GET /share with ``params``; asserts 200."""
        response = await self.client.get("/share", params=params, headers=self.reader)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


MANAGER = "manager-5c2e"
"""The subject of the fixture's tokens."""


@asynccontextmanager
async def running_metrics(hub_settings: HubSettings, **overrides: Any) -> AsyncIterator[Metrics]:
    """A metrics app consuming the test's topics, connected to Kafka, with a started producer,
    until the block ends (the app stops as a deployment would stop it)."""
    app = create_app(MetricsSettings(hub=hub_settings, **overrides))
    producer = EventProducer(hub_settings, client_id="test-publisher")
    async with running_app(app, "metrics") as client:
        await producer.start()
        try:
            yield Metrics(
                app,
                client,
                hub_settings,
                producer,
                auth(hub_settings, "metrics:read", subject=MANAGER),
                auth(hub_settings, "metrics:ingest", subject=MANAGER),
            )
        finally:
            await producer.stop()


@pytest.fixture
async def metrics(hub_settings: HubSettings) -> AsyncIterator[Metrics]:
    """A metrics app consuming this test's topics, with a started producer."""
    async with running_metrics(hub_settings) as running:
        yield running


def copenhagen_yesterday() -> dt.date:
    """A day surely not in the future in Copenhagen, whatever the clock of the test machine."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
