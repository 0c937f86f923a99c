"""Fixtures for the plumbing's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.plumbing.outbox import Outbox, OutboxRelay
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics
from tests.integration.plumbing.support import SERVICE, Wiring


@pytest.fixture
async def wiring(hub_settings: HubSettings, redis_client: Redis) -> AsyncIterator[Wiring]:
    """A pretend service "probe": outbox, relay and producer on this test's topics and keys."""
    await ensure_topics(hub_settings)
    producer = EventProducer(hub_settings, client_id="kanalhub-test")
    await producer.start()
    outbox = Outbox(redis_client, hub_settings, SERVICE)
    relay = OutboxRelay(redis_client, producer, outbox, hub_settings, lease_ms=1000)
    yield Wiring(hub_settings, redis_client, producer, outbox, relay)
    await producer.stop()
