"""Benchmarks of the shared plumbing, on the real embedded broker and Valkey.

These are the ceilings every service works under: how fast a request can write its state and
event (outbox), how fast the relay empties the outbox into Kafka, how fast the consumer loop
applies events with its per-event dedupe transaction compared with a bare aiokafka consume of
the same records (measured side by side, in the same run), and the latency from an outbox
write to the handler's stored effect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from bench.stats import percentile
from services.contracts import CloudEvent, ContactMode, District, EventType, Topic, new_event
from services.contracts.payloads.mobile import ContactRecorded
from services.plumbing.consumer import EventConsumer, Transaction
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.outbox import Outbox, OutboxRelay
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

SERVICE = "bench"


@dataclass
class Result:
    """One benchmark's figures; ``baseline`` figures were measured in the same run."""

    name: str
    figures: dict[str, float]
    unit: str
    note: str = ""
    baseline: dict[str, float] = field(default_factory=dict)


def contact_event(visit: int, at: datetime | None = None) -> CloudEvent:
    """A mobile contact event: a real contract event of realistic size."""
    return new_event(
        EventType.MOBILE_CONTACT_RECORDED,
        ContactRecorded(
            contact_id=f"contact-{uuid4().hex[:12]}",
            visit_id=f"visit-{visit}",
            district=District.VALBY,
            service="passport",
            mode=ContactMode.SELF_SERVICE,
            onboarded_to_digital=False,
            at=at or datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
        ),
        source="/kanalhub/bench",
        time=at,
    )


async def _rate(work: Callable[[], Awaitable[None]], count: int) -> float:
    started = time.perf_counter()
    await work()
    return count / (time.perf_counter() - started)


async def outbox_writes(redis: Redis, settings: HubSettings, count: int, clients: int) -> Result:
    """``clients`` concurrent writers, one MULTI/EXEC per event: the shape of an API write."""
    outbox = Outbox(redis, settings, SERVICE)
    latencies: list[float] = []
    events = [contact_event(i % 97) for i in range(count)]

    async def writer(part: list[CloudEvent]) -> None:
        for event in part:
            started = time.perf_counter()
            await outbox.publish(event)
            latencies.append(time.perf_counter() - started)

    async def all_writers() -> None:
        await asyncio.gather(*(writer(events[i::clients]) for i in range(clients)))

    rate = await _rate(all_writers, count)
    return Result(
        "outbox write (one transaction per event)",
        {
            "events_per_s": rate,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
        },
        unit="events/s",
        note=f"{clients} concurrent writers, {count} events",
    )


async def relay_drain(
    redis: Redis, producer: EventProducer, settings: HubSettings, count: int
) -> Result:
    """Time for the relay to publish ``count`` waiting events to the broker (acks=all)."""
    outbox = Outbox(redis, settings, SERVICE)
    relay = OutboxRelay(redis, producer, outbox, settings)

    async def drain() -> None:
        while await outbox.depth() > 0:
            await relay.step()

    rate = await _rate(drain, count)
    return Result("relay: outbox -> broker", {"events_per_s": rate}, unit="events/s")


async def consume(
    redis: Redis, producer: EventProducer, settings: HubSettings, count: int
) -> Result:
    """The consumer loop (decode, dedupe transaction, handler, commit) against a bare consume."""
    topic = settings.topic(Topic.MOBILE)
    bare_rate = await _rate(lambda: bare_consume(settings, topic, count), count)

    per_event = await _loop_rate(redis, producer, settings, count, batch=False)
    per_batch = await _loop_rate(redis, producer, settings, count, batch=True)
    return Result(
        "consumer loop (dedupe + effect)",
        {
            "per_event_tx_events_per_s": per_event,
            "per_event_tx_ratio_to_bare": per_event / bare_rate,
            "per_batch_tx_events_per_s": per_batch,
            "per_batch_tx_ratio_to_bare": per_batch / bare_rate,
        },
        unit="events/s",
        baseline={"bare_aiokafka_consume_events_per_s": bare_rate},
        note="includes group join; per-event: one WATCH/MULTI/EXEC per event; "
        "per-batch: one per fetched batch (transaction_per_batch)",
    )


async def _loop_rate(
    redis: Redis, producer: EventProducer, settings: HubSettings, count: int, *, batch: bool
) -> float:
    mode = "batch" if batch else "event"
    effects = settings.key(SERVICE, f"effects-{mode}")

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        tx.pipe.hincrby(effects, event.subject, 1)

    consumer = EventConsumer(
        settings=settings,
        service=f"{SERVICE}-{mode}",
        group_id=f"kanalhub.bench.{mode}{settings.topic_suffix}",
        redis=redis,
        producer=producer,
        outbox=Outbox(redis, settings, SERVICE),
        handlers={EventType.MOBILE_CONTACT_RECORDED: handle},
        transaction_per_batch=batch,
    )

    async def loop() -> None:
        task = asyncio.create_task(consumer.run())
        while sum(int(v) for v in (await redis.hvals(effects))) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        consumer.stopping.set()
        await task

    return await _rate(loop, count)


async def bare_consume(settings: HubSettings, topic: str, count: int) -> None:
    """Read ``count`` records of ``topic`` with a plain aiokafka consumer: the ceiling."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(settings),
        group_id=f"kanalhub.bench.bare{settings.topic_suffix}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def end_to_end(
    redis: Redis, producer: EventProducer, settings: HubSettings, count: int, interval_s: float
) -> Result:
    """Outbox write -> relay -> broker -> consumer -> stored effect, one event at a time."""
    latencies: list[float] = []
    outbox = Outbox(redis, settings, SERVICE)
    relay = OutboxRelay(redis, producer, outbox, settings, block_ms=50)
    received = asyncio.Event()

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        latencies.append((datetime.now(UTC) - event.time).total_seconds())
        if len(latencies) >= count:
            received.set()

    consumer = EventConsumer(
        settings=settings,
        service=SERVICE,
        group_id=f"kanalhub.bench.e2e{settings.topic_suffix}",
        redis=redis,
        producer=producer,
        outbox=outbox,
        handlers={EventType.MOBILE_CONTACT_RECORDED: handle},
    )
    relay_task = asyncio.create_task(relay.run())
    consumer_task = asyncio.create_task(consumer.run())
    try:
        await outbox.publish(contact_event(0))  # wait for the group to form before timing
        while not latencies:  # noqa: ASYNC110 - the consumer task appends
            await asyncio.sleep(0.05)
        latencies.clear()
        for i in range(count):
            await outbox.publish(contact_event(i % 97, at=datetime.now(UTC)))
            await asyncio.sleep(interval_s)
        await asyncio.wait_for(received.wait(), 60)
    finally:
        relay.stopping.set()
        consumer.stopping.set()
        await asyncio.gather(relay_task, consumer_task, return_exceptions=True)
    return Result(
        "end to end: outbox write -> stored effect",
        {
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
        },
        unit="ms",
        note=f"{count} events, one every {interval_s * 1000:.0f} ms",
    )


async def run_all(
    settings: HubSettings, count: int, everysec_redis_url: str | None = None
) -> list[Result]:
    """All plumbing benchmarks in order; each uses this run's own topics and keys.

    With ``everysec_redis_url`` (a second Valkey with ``appendfsync everysec``) the outbox
    write is measured there too, so the price of ``appendfsync always`` is a same-run figure.
    """
    await ensure_topics(settings)
    redis = Redis.from_url(settings.redis_url, socket_timeout=10)
    producer = EventProducer(settings, client_id="kanalhub-bench")
    await producer.start()
    try:
        results = [await outbox_writes(redis, settings, count, clients=50)]
        results[0].name += " - appendfsync always"
        if everysec_redis_url is not None:
            relaxed = Redis.from_url(everysec_redis_url, socket_timeout=10)
            try:
                everysec = await outbox_writes(relaxed, settings, count, clients=50)
            finally:
                await relaxed.aclose()
            results[0].baseline = {
                f"appendfsync_everysec_{k}": v for k, v in everysec.figures.items()
            }
        results.append(await relay_drain(redis, producer, settings, count))
        results.append(await consume(redis, producer, settings, count))
        e2e_settings = settings.model_copy(
            update={
                "topic_suffix": f"{settings.topic_suffix}e",
                "key_prefix": f"{settings.key_prefix}e",
            }
        )
        await ensure_topics(e2e_settings)
        results.append(
            await end_to_end(redis, producer, e2e_settings, max(20, count // 40), interval_s=0.005)
        )
        return results
    finally:
        await producer.stop()
        await redis.aclose()


def as_json(results: list[Result]) -> list[dict[str, Any]]:
    """The results as plain data for the JSON file."""
    return [
        {
            "name": r.name,
            "unit": r.unit,
            "figures": r.figures,
            "baseline": r.baseline,
            "note": r.note,
        }
        for r in results
    ]
