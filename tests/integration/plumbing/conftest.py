"""Fixtures for the plumbing's integration tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.hub.embedded import REFERENCE_BROKER, KafkaBroker, free_port, make_broker
from services.plumbing.settings import HubSettings
from tests.integration.plumbing.support import Wiring, wired


@pytest.fixture
async def wiring(hub_settings: HubSettings, redis_client: Redis) -> AsyncIterator[Wiring]:
    """A pretend service "probe": outbox, relay and producer on this test's topics and keys."""
    async with wired(hub_settings, redis_client) as wiring:
        yield wiring


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of the kind under test for this test alone, because the test stops it."""
    kind = os.environ.get("KANALHUB_TEST_BROKER", REFERENCE_BROKER)
    broker = make_broker(kind, free_port(), tmp_path / "broker")  # type: ignore[arg-type]
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def private_wiring(
    private_broker: KafkaBroker, hub_settings: HubSettings, redis_client: Redis
) -> AsyncIterator[Wiring]:
    """Like ``wiring``, on the private broker (Valkey stays the session one)."""
    settings = hub_settings.model_copy(
        update={"kafka_bootstrap": private_broker.bootstrap, "kafka_timeout_seconds": 3.0}
    )
    async with wired(settings, redis_client) as wiring:
        yield wiring
