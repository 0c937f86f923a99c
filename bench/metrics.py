"""Benchmarks of the metrics service, on the real embedded broker and Valkey.

1. Aggregation: the metrics service's own handler table and consumer loop (a transaction per
   fetched batch) over KVIK session events spread across a year, against a bare aiokafka
   consume of the same records in the same run (the ratio shows how close to the limit the
   pipeline is). One Python process, so one core for the service's own work.
2. Memory: Redis bytes of everything the aggregation stored, per million events, split into
   the dedupe marks (they grow with events until they expire) and the aggregates (they grow
   with days x districts x channels x modes x services).
3. The share over a year for all districts, from the rollups, against a ``GROUP BY`` over the
   same raw contacts in SQLite (in memory, indexed by day), side by side.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from redis.asyncio import Redis

from bench.plumbing import Result, bare_consume
from bench.stats import percentile
from services.contracts import (
    Channel,
    CloudEvent,
    ContactMode,
    District,
    EventType,
    HelpChannel,
    SessionCompleted,
    Topic,
    encode_event,
    kafka_headers,
    new_event,
)
from services.metrics import figures
from services.metrics.domain import ContactCount
from services.metrics.events import handlers
from services.metrics.store import Counts, MetricsStore, flush_counts
from services.plumbing.consumer import EventConsumer
from services.plumbing.outbox import Outbox
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

YEAR = 2025
SERVICES = (
    "change_of_address",
    "passport",
    "driving_licence",
    "health_insurance_card",
    "digital_id",
    "pension",
    "housing_benefit",
    "childcare_place",
)
QUERIES = 200


def _random_day(rng: random.Random) -> date:
    return date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))


def session_events(count: int, seed: int = 7) -> Iterator[CloudEvent]:
    """Completed KVIK sessions spread over a year, the districts and the services."""
    rng = random.Random(seed)
    districts = list(District)
    for _ in range(count):
        ended = datetime.combine(_random_day(rng), datetime.min.time(), UTC) + timedelta(
            hours=rng.randrange(8, 18), minutes=rng.randrange(60)
        )
        yield new_event(
            EventType.KVIK_SESSION_COMPLETED,
            SessionCompleted(
                session_id=str(uuid4()),
                kiosk_id="kiosk-bench-01",
                entry_id="entry-bench-kvik",
                district=rng.choice(districts),
                service=rng.choice(SERVICES),
                started_at=ended - timedelta(minutes=rng.randrange(2, 15)),
                ended_at=ended,
                steps=("choose_service", "log_in", "confirm"),
                help=HelpChannel.NONE if rng.random() < 0.85 else HelpChannel.VIDEO,
            ),
            source="/kanalhub/bench",
        )


async def _produce(producer: EventProducer, settings: HubSettings, count: int) -> None:
    topic = settings.topic(Topic.KVIK)
    pending = []
    for event in session_events(count):
        pending.append(
            producer.send(topic, event.subject, encode_event(event), kafka_headers(event))
        )
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def aggregation(
    redis: Redis, producer: EventProducer, settings: HubSettings, count: int
) -> tuple[Result, Result]:
    """Aggregation rate against a bare consume, and the Redis memory it left behind."""
    await _produce(producer, settings, count)
    started = time.perf_counter()
    await bare_consume(settings, settings.topic(Topic.KVIK), count)
    bare_rate = count / (time.perf_counter() - started)

    store = MetricsStore(settings)
    consumer = EventConsumer(
        settings=settings,
        service="metrics",
        group_id=f"kanalhub.bench.metrics{settings.topic_suffix}",
        redis=redis,
        producer=producer,
        outbox=Outbox(redis, settings, "metrics"),
        handlers=handlers(settings),
        batch_size=2000,
        transaction_per_batch=True,
    )
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run())
    totals = store.key("totals")
    while sum(int(v) for v in await redis.hvals(totals)) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    rate = count / (time.perf_counter() - started)
    consumer.stopping.set()
    await task
    rate_result = Result(
        "metrics aggregation (events -> rollups)",
        {"events_per_s": rate, "ratio_to_bare": rate / bare_rate},
        unit="events/s",
        baseline={"bare_aiokafka_consume_events_per_s": bare_rate},
        note="targets >= 20,000/s and >= 0.25; includes group join; counter changes summed "
        "per fetched batch and applied with the dedupe marks by one Lua script in one MULTI",
    )
    marks, aggregates = await _memory(redis, store)
    memory_result = Result(
        "metrics Redis memory per million events",
        {
            "dedupe_marks_bytes_per_million_events": marks / count * 1_000_000,
            "aggregates_bytes_per_million_events": aggregates / count * 1_000_000,
            "aggregates_bytes": aggregates,
        },
        unit="bytes",
        note=f"{count} events over 365 days; marks expire after the dedupe window, aggregates "
        "are bounded by days x districts x channels x modes x services",
    )
    return rate_result, memory_result


async def _memory(redis: Redis, store: MetricsStore) -> tuple[int, int]:
    marks = aggregates = 0
    for pattern in store.aggregate_patterns():
        keys = [key async for key in redis.scan_iter(match=pattern, count=5000)]
        for start in range(0, len(keys), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 1000]:
                    pipe.memory_usage(key, samples=0)
                sizes = await pipe.execute()
            total = sum(size or 0 for size in sizes)
            if pattern.endswith("seen:*"):
                marks += total
            else:
                aggregates += total
    return marks, aggregates


def raw_contacts(count: int, seed: int = 11) -> Iterator[tuple[str, str, str, str, str]]:
    """``count`` raw contacts (day, district, channel, mode, service) over a year."""
    rng = random.Random(seed)
    districts, channels = list(District), list(Channel)
    for _ in range(count):
        yield (
            _random_day(rng).isoformat(),
            rng.choice(districts).value,
            rng.choice(channels).value,
            ContactMode.SELF_SERVICE.value if rng.random() < 0.7 else ContactMode.ASSISTED.value,
            rng.choice(SERVICES),
        )


async def share_query(redis: Redis, settings: HubSettings, raw_count: int) -> Result:
    """A year's share for all districts from the rollups vs GROUP BY in SQLite, same contacts."""
    database = sqlite3.connect(":memory:")
    database.execute(
        "CREATE TABLE contacts (day TEXT, district TEXT, channel TEXT, mode TEXT, service TEXT)"
    )
    cells: Counter[tuple[str, str, str, str, str]] = Counter()
    rows = []
    for row in raw_contacts(raw_count):
        rows.append(row)
        cells[row] += 1
    database.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?)", rows)
    database.execute("CREATE INDEX contacts_day ON contacts (day)")
    del rows

    store = MetricsStore(settings)
    items = list(cells.items())
    for start in range(0, len(items), 2000):
        counts: Counts = Counter()
        store.add_contacts(
            counts,
            (
                ContactCount(
                    date.fromisoformat(day),
                    District(district),
                    Channel(channel),
                    ContactMode(mode),
                    service,
                    count,
                )
                for (day, district, channel, mode, service), count in items[start : start + 2000]
            ),
        )
        async with redis.pipeline(transaction=False) as pipe:
            flush_counts(pipe, counts)
            await pipe.execute()

    first, last = date(YEAR, 1, 1), date(YEAR, 12, 31)
    redis_ms: list[float] = []
    shares: dict[District, figures.domain.Share] = {}
    for _ in range(QUERIES):
        started = time.perf_counter()
        shares = await figures.shares_in(store, redis, first, last)
        redis_ms.append((time.perf_counter() - started) * 1000)
    sqlite_ms: list[float] = []
    grouped: list[tuple[str, str, int]] = []
    for _ in range(max(3, min(QUERIES, 20_000_000 // max(raw_count, 1)) // 10)):
        started = time.perf_counter()
        grouped = database.execute(
            "SELECT district, mode, count(*) FROM contacts WHERE day BETWEEN ? AND ? "
            "GROUP BY district, mode",
            (first.isoformat(), last.isoformat()),
        ).fetchall()
        sqlite_ms.append((time.perf_counter() - started) * 1000)
    database.close()
    from_sqlite = sum(n for _, mode, n in grouped if mode == ContactMode.SELF_SERVICE.value)
    from_rollups = sum(share.self_service for share in shares.values())
    if from_sqlite != from_rollups:
        raise AssertionError(f"rollups say {from_rollups}, SQLite says {from_sqlite}")
    return Result(
        "share over a year, all districts",
        {
            "p50_ms": percentile(redis_ms, 50),
            "p99_ms": percentile(redis_ms, 99),
            "speedup_p50_vs_sqlite": percentile(sqlite_ms, 50) / percentile(redis_ms, 50),
        },
        unit="ms",
        baseline={
            "sqlite_group_by_p50_ms": percentile(sqlite_ms, 50),
            "sqlite_group_by_p99_ms": percentile(sqlite_ms, 99),
        },
        note=f"{raw_count:,} raw contacts on both sides, results checked equal; targets "
        "p99 < 20 ms and >= 100x",
    )


async def run_all(settings: HubSettings, count: int, raw_count: int) -> list[Result]:
    """All metrics benchmarks; each uses this run's own topics and keys."""
    await ensure_topics(settings)
    redis = Redis.from_url(settings.redis_url, socket_timeout=30)
    producer = EventProducer(settings, client_id="kanalhub-bench-metrics")
    await producer.start()
    try:
        rate, memory = await aggregation(redis, producer, settings, count)
        query_settings = settings.model_copy(update={"key_prefix": f"{settings.key_prefix}q"})
        return [rate, memory, await share_query(redis, query_settings, raw_count)]
    finally:
        await producer.stop()
        await redis.aclose()
