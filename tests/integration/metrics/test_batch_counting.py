"""The metrics handler table through the consumer's batch path: one commit script per batch.

Hand-made records go straight to ``EventConsumer.process_records`` (the path ``rebuild`` and
every fetched batch take), so each test decides exactly what one batch holds.
"""

from __future__ import annotations

import datetime as dt

import pytest
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from services.contracts import (
    CloudEvent,
    EventType,
    HelpChannel,
    Topic,
    encode_event,
    new_event,
)
from services.metrics.domain import Period
from services.metrics.events import handlers
from services.metrics.store import MetricsStore
from services.plumbing.consumer import EventConsumer
from services.plumbing.outbox import Outbox
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import AT, payload, session

pytestmark = pytest.mark.integration

DAY = dt.date(2024, 1, 15)
SELF_SERVICE = "valby|kvik|self_service|passport"


def batch_consumer(settings: HubSettings, redis: Redis) -> EventConsumer:
    """The metrics service's consumer as its app builds it (never started: no broker needed)."""
    return EventConsumer(
        settings=settings,
        service="metrics",
        group_id="kanalhub.metrics.test",
        redis=redis,
        producer=EventProducer(settings, client_id="unused"),
        outbox=Outbox(redis, settings, "metrics"),
        handlers=handlers(settings),
        transaction_per_batch=True,
    )


def records(settings: HubSettings, events: list[CloudEvent]) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic=settings.topic(Topic.KVIK),
            partition=0,
            offset=offset,
            timestamp=0,
            timestamp_type=0,
            key=event.subject.encode(),
            value=encode_event(event),
            checksum=None,
            serialized_key_size=len(event.subject),
            serialized_value_size=0,
            headers=[],
        )
        for offset, event in enumerate(events)
    ]


async def test_sessions_seen_twice_in_and_across_batches_count_once_in_every_rollup(
    hub_settings: HubSettings, redis_client: Redis
) -> None:
    sessions = [
        session(EventType.KVIK_SESSION_COMPLETED, at=AT + dt.timedelta(minutes=i), help="none")
        for i in range(4)
    ]
    consumer = batch_consumer(hub_settings, redis_client)
    await consumer.process_records(records(hub_settings, [*sessions[:3], sessions[1]]))
    await consumer.process_records(records(hub_settings, sessions[2:]))
    store = MetricsStore(hub_settings)
    for kind, field in (("cells", SELF_SERVICE), ("mix", "valby|kvik|self_service")):
        for period in Period:
            rollup = store.rollup_key(kind, period, DAY)
            assert await redis_client.hget(rollup, field) == b"4", rollup
    assert await store.totals(redis_client) == {("valby", "kvik", "self_service"): 4}
    assert await store.flat_hash(redis_client, "kvik", "sessions") == {"valby|completed|none": 4}


async def test_a_batch_mixing_counted_and_stored_effects_applies_each_once(
    hub_settings: HubSettings, redis_client: Redis
) -> None:
    # A kiosk event queues its own HSET: the batch takes the WATCHed path, counts included.
    completed = session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.VIDEO)
    abandoned = session(EventType.KVIK_SESSION_ABANDONED, help="none")
    online = new_event(
        EventType.KVIK_KIOSK_ONLINE,
        payload(EventType.KVIK_KIOSK_ONLINE, district="valby"),
        source="/kanalhub/kvik",
    )
    consumer = batch_consumer(hub_settings, redis_client)
    batch = records(hub_settings, [completed, online, abandoned, completed])
    await consumer.process_records(batch)
    await consumer.process_records(batch)
    store = MetricsStore(hub_settings)
    assert await store.flat_hash(redis_client, "kvik", "sessions") == {
        "valby|completed|video": 1,
        "valby|abandoned|none": 1,
    }
    assert [kiosk.state for kiosk in await store.kiosks(redis_client)] == ["online"]
