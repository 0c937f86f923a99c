"""Operator commands of the metrics service, run from ``kanalhub metrics ...``.

- ``rebuild``: every figure can be recomputed from the topics. Drop the aggregates, replay every
  consumed topic from its first record up to where it ended when the command started (through
  the same handlers, batching and dedupe marks as the running service). The service's consumer
  group keeps its offsets; whatever it reads again after a restart was marked as seen by the
  replay, so nothing counts twice. Run it with the metrics service stopped (a running one
  would count into the aggregates while they are being dropped).
- ``redrive``: re-publish the metrics service's dead letters to the topic they came from, e.g.
  help events dead-lettered as ``unknown_entry`` once the registry has told of the entry. Each
  dead letter is re-driven once; if it fails again it becomes a new dead letter.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.contracts import Topic
from services.metrics.events import handlers
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore
from services.plumbing.consumer import EventConsumer
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.outbox import Outbox
from services.plumbing.producer import EventProducer
from services.plumbing.runtime import connect_redis
from services.plumbing.topics import topic_partitions

Progress = Callable[[int, int], None]
"""Called with (records done, records in all) as a long command goes on."""


def _no_progress(_done: int, _total: int) -> None:
    return None


async def rebuild(settings: MetricsSettings, progress: Progress = _no_progress) -> int:
    """Recompute every aggregate from the topics; returns how many records were replayed."""
    redis = connect_redis(settings)
    producer = EventProducer(settings.hub, client_id="kanalhub-metrics-rebuild")
    reader = _reader(settings, group_id=None)
    await producer.start()
    await reader.start()
    try:
        replayer = EventConsumer(
            settings=settings.hub,
            service=settings.service,
            group_id=settings.consumer_group,
            redis=redis,
            producer=producer,
            outbox=Outbox(redis, settings.hub, settings.service),
            handlers=handlers(settings.hub),
            transaction_per_batch=True,
        )
        partitions = await topic_partitions(settings.hub, replayer.topics)
        ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)
        starts: dict[TopicPartition, int] = await reader.beginning_offsets(partitions)
        await MetricsStore(settings.hub).drop_aggregates(redis)
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        done = 0
        # The registry first: other events are looked up in its copy (a help event's entry),
        # and in the log they came long after the entry they name.
        registry = settings.hub.topic(Topic.REGISTRY)
        for phase in (
            [tp for tp in partitions if tp.topic == registry],
            [tp for tp in partitions if tp.topic != registry],
        ):
            pending = {tp for tp in phase if ends[tp] > starts[tp]}
            while pending:
                batch = await reader.getmany(*pending, timeout_ms=1000, max_records=2000)
                for tp, records in batch.items():
                    records = [r for r in records if r.offset < ends[tp]]
                    if records:
                        await replayer.process_records(records)
                        done += len(records)
                        progress(done, total)
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
        return done
    finally:
        await reader.stop()
        await producer.stop()
        await redis.aclose()


async def redrive(settings: MetricsSettings, reason: str | None = None) -> int:
    """Re-publish the metrics service's dead letters (with ``reason``, or all) to their original
    topics; returns how many were re-published."""
    redis = connect_redis(settings)
    producer = EventProducer(settings.hub, client_id="kanalhub-metrics-redrive")
    reader = _reader(settings, group_id=None)
    await producer.start()
    await reader.start()
    store = MetricsStore(settings.hub)
    try:
        topic = settings.hub.topic(Topic.DEADLETTER)
        partitions = await topic_partitions(settings.hub, [topic])
        ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)
        reader.assign(partitions)
        redriven = 0
        for tp in partitions:
            start = await store.redriven_up_to(redis, topic, tp.partition)
            if start >= ends[tp]:
                continue
            reader.seek(tp, start)
            while await reader.position(tp) < ends[tp]:
                batch = await reader.getmany(tp, timeout_ms=1000, max_records=500)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        break
                    headers = {k: v.decode() for k, v in record.headers or ()}
                    if headers.get("dlq_consumer_group") == settings.consumer_group and (
                        reason is None or headers.get("dlq_reason") == reason
                    ):
                        await producer.send(
                            headers["dlq_original_topic"],
                            record.key,
                            record.value or b"",
                            [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")],
                        )
                        redriven += 1
                    await store.set_redriven_up_to(redis, topic, tp.partition, record.offset + 1)
        return redriven
    finally:
        await reader.stop()
        await producer.stop()
        await redis.aclose()


def _reader(settings: MetricsSettings, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **kafka_client_options(settings.hub),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="kanalhub-metrics-command",
    )


async def _partitions(reader: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    await reader.topics()  # fetches the cluster's metadata
    partitions: list[TopicPartition] = []
    for topic in topics:
        numbers = reader.partitions_for_topic(topic) or set()
        partitions.extend(TopicPartition(topic, n) for n in sorted(numbers))
    return partitions
