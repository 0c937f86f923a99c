"""An idle consumer does not spin on a broker that answers empty fetches at once."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from services.contracts import Topic
from services.hub.embedded import KafkaBroker
from services.plumbing.fetch_pacing import EMPTY_FETCH_PAUSE_SECONDS, pace_empty_fetches
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

pytestmark = pytest.mark.integration

IDLE_SECONDS = 2.0


async def _idle_fetches(hub_settings: HubSettings, *, paced: bool) -> int:
    """How many fetch requests a consumer of an empty topic sends in IDLE_SECONDS."""
    settings = hub_settings.model_copy(update={"topic_suffix": f".idle{uuid.uuid4().hex[:8]}"})
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.KVIK),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        if paced:
            pace_empty_fetches(consumer)
        fetcher = consumer._fetcher
        inner = fetcher._proc_fetch_request
        calls = 0

        async def counted(*args: object) -> bool:
            nonlocal calls
            calls += 1
            result: bool = await inner(*args)
            return result

        fetcher._proc_fetch_request = counted
        deadline = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=100)
        return calls
    finally:
        await consumer.stop()


async def test_an_idle_paced_consumer_sends_at_most_one_fetch_per_pause(
    hub_settings: HubSettings,
) -> None:
    fetches = await _idle_fetches(hub_settings, paced=True)
    assert 0 < fetches <= IDLE_SECONDS / EMPTY_FETCH_PAUSE_SECONDS + 1


async def test_pacing_is_what_keeps_the_fetches_down(
    hub_settings: HubSettings, broker: KafkaBroker
) -> None:
    """Without the pause the same consumer asks far more often on a broker that answers an empty
    fetch at once (Apache Kafka holds it for fetch_max_wait_ms, so pacing is off there)."""
    if not broker.client_settings().get("empty_fetch_pause_seconds"):
        pytest.skip(f"the {broker.kind} broker holds empty fetches itself: no pacing to test")
    unpaced = await _idle_fetches(hub_settings, paced=False)
    paced = await _idle_fetches(hub_settings, paced=True)
    assert unpaced > 3 * paced
