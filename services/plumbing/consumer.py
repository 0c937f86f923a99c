"""The one consumer loop every service uses.

For each record: decode -> dedupe -> handle -> store, then commit the offset by hand.

- **Effect and dedupe mark are one atomic step.** The handler queues its writes into a MULTI
  pipeline; the loop adds ``SET <seen:event-id> EX ttl`` to the same transaction and WATCHes the
  mark, so two deliveries racing each other (a rebalance) cannot both apply. A plain ``SET NX``
  before the handler would lose the effect if the process died between mark and effect; one after
  the handler would double it.
- **Offsets are committed only after the batch's effects are stored.** A consumer that dies in
  between gets the records again; the marks make the second delivery a no-op.
- **Transient errors** (Redis or Kafka unreachable, timeouts) are retried with backoff, forever:
  an outage is not the event's fault. Other failures are retried ``max_attempts`` times, then the
  record goes to the dead-letter topic with its reason, and the loop moves on.
- A committed offset that is out of range (a broker that came back empty) resets to the earliest
  offset (``auto_offset_reset="earliest"``); dedupe absorbs anything seen twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaTimeoutError
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from services.contracts import (
    EVENT_TOPIC,
    CloudEvent,
    EventDecodeError,
    EventType,
    Topic,
    decode_event,
)
from services.plumbing.backoff import Backoff, pause, stop_if_cancelled
from services.plumbing.logging import get_logger
from services.plumbing.metrics import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEADLETTERED,
    HANDLER_DURATION,
    HANDLER_RETRIES,
)
from services.plumbing.outbox import Outbox
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings

log = get_logger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """Raise from a handler to say: not now, retry later (never dead-letter for this)."""


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    TransientError,
    RedisConnectionError,
    RedisTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    TimeoutError,
    ConnectionError,
)


class _StopRequested(Exception):
    """Leave the batch unfinished and uncommitted because the service is stopping."""


class UnprocessableEvent(Exception):
    """Raise from a handler to dead-letter an event at once, e.g. it names an unknown kiosk."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class Transaction:
    """What a handler gets besides the event.

    ``pipe`` is a MULTI pipeline: commands queued on it run atomically with the dedupe mark.
    ``redis`` is a plain client for the reads a handler needs before deciding what to write.
    ``emit`` stages a follow-up event in the service's outbox within the same transaction.
    """

    pipe: Pipeline
    redis: Redis
    outbox: Outbox
    _finishers: dict[str, tuple[Any, Callable[[Pipeline, Any], None]]] = field(default_factory=dict)

    def emit(self, event: CloudEvent) -> None:
        """Publish ``event`` if, and only if, this transaction commits."""
        self.outbox.stage(self.pipe, event)

    def gather(
        self, name: str, factory: Callable[[], T], flush: Callable[[Pipeline, T], None]
    ) -> T:
        """A per-transaction accumulator: the same object for every event of the transaction,
        handed to ``flush`` once, just before the transaction executes.

        For writes that add up (counters): a batch of 500 events that each add 1 to the same
        field becomes one HINCRBY by 500 instead of 500 queued commands.
        """
        if name not in self._finishers:
            self._finishers[name] = (factory(), flush)
        accumulator: T = self._finishers[name][0]
        return accumulator

    def finish(self) -> None:
        """Queue what the accumulators gathered (the consumer calls this before EXEC)."""
        for accumulator, flush in self._finishers.values():
            flush(self.pipe, accumulator)
        self._finishers.clear()


Handler = Callable[[CloudEvent, Transaction], Awaitable[None]]


@dataclass(frozen=True)
class DeadLetter:
    """Why a record could not be processed; becomes the ``dlq_*`` headers."""

    reason: str
    detail: str


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in hand to be stored and committed before partitions move."""

    def __init__(self, consumer: EventConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self._consumer.batch_lock:
            log.info(
                "partitions revoked", partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked]
            )

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info(
            "partitions assigned", partitions=[f"{tp.topic}:{tp.partition}" for tp in assigned]
        )


class EventConsumer:
    """Consumes the topics its handlers need, in the service's consumer group."""

    def __init__(
        self,
        *,
        settings: HubSettings,
        service: str,
        group_id: str,
        redis: Redis,
        producer: EventProducer,
        outbox: Outbox,
        handlers: Mapping[EventType, Handler],
        max_attempts: int = 3,
        batch_size: int = 500,
        session_timeout_ms: int = 10_000,
        transaction_per_batch: bool = False,
    ) -> None:
        self._settings = settings
        self._service = service
        self._group_id = group_id
        self._redis = redis
        self._producer = producer
        self._outbox = outbox
        self._handlers = dict(handlers)
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        self._session_timeout_ms = session_timeout_ms
        self._transaction_per_batch = transaction_per_batch
        self.batch_lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.topics = sorted({settings.topic(EVENT_TOPIC[t]) for t in self._handlers})
        self._deadletter_topic = settings.topic(Topic.DEADLETTER)

    async def run(self) -> None:
        """Consume until ``stopping`` is set; a lost broker is logged and reconnected.

        Stopping is cooperative: the batch in hand is finished and committed first, so a clean
        shutdown redelivers nothing.
        """
        if not self.topics:
            return
        backoff = Backoff(initial=0.2, maximum=10.0)
        while not self.stopping.is_set():
            consumer = self._new_consumer()
            try:
                await asyncio.wait_for(consumer.start(), self._settings.kafka_timeout_seconds)
                consumer.subscribe(self.topics, listener=_Rebalance(self))
                log.info("consumer started", group=self._group_id, topics=self.topics)
                backoff.reset()
                while not self.stopping.is_set():
                    await self.poll_once(consumer)
            except asyncio.CancelledError:
                raise
            except _StopRequested:
                return
            except Exception as exc:
                stop_if_cancelled()
                delay = backoff.next_delay()
                log.warning(
                    "consumer lost the broker, reconnecting",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(delay, 2),
                )
                await pause(delay, self.stopping)
            finally:
                await _stop_quietly(consumer)

    def _new_consumer(self) -> AIOKafkaConsumer:
        instance = self._settings.instance_id
        return AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=self._group_id,
            group_instance_id=f"{self._service}-{instance}" if instance else None,
            client_id=f"kanalhub-{self._service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(500, self._session_timeout_ms // 5),
            request_timeout_ms=int(self._settings.kafka_timeout_seconds * 1000) + 30_000,
            max_poll_records=self._batch_size,
        )

    async def poll_once(self, consumer: AIOKafkaConsumer) -> int:
        """Fetch one batch, process it, commit it. Returns the number of records processed."""
        batch = await consumer.getmany(timeout_ms=500, max_records=self._batch_size)
        if not batch:
            await self.rewind_if_past_the_end(consumer)
        processed = 0
        async with self.batch_lock:
            # Every partition's records in one transaction when allowed (each partition's stay
            # in order); if that cannot be done, partition by partition as usual.
            together = self._transaction_per_batch and len(batch) > 1
            stored = together and await self._apply_batch(
                [record for records in batch.values() for record in records]
            )
            for tp, records in batch.items():
                if not stored:
                    await self.process_records(records)
                processed += len(records)
                await self.commit(consumer, tp, records[-1].offset + 1)
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    CONSUMER_LAG.labels(self._service, tp.topic, str(tp.partition)).set(
                        max(0, highwater - records[-1].offset - 1)
                    )
        return processed

    async def process_records(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Store the effect of ``records`` (one partition's, in order) without committing:
        one transaction for all when ``transaction_per_batch`` allows, else one per event."""
        if not (self._transaction_per_batch and await self._apply_batch(records)):
            for record in records:
                await self._process(record)

    async def rewind_if_past_the_end(self, consumer: AIOKafkaConsumer) -> None:
        """Read from the beginning a partition whose position lies beyond its high watermark.

        That happens when the broker came back with less data than we had committed (a
        memory-only broker after a restart). A real Kafka broker answers OFFSET_OUT_OF_RANGE
        and ``auto_offset_reset="earliest"`` handles it; some Kafka-protocol brokers just
        return nothing, which would leave the consumer waiting forever. Dedupe absorbs
        anything read twice.
        """
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await asyncio.wait_for(
                consumer.position(tp), self._settings.kafka_timeout_seconds
            )
            if position > highwater:
                log.warning(
                    "position beyond the end of the partition, reading it from the beginning",
                    partition=f"{tp.topic}:{tp.partition}",
                    position=position,
                    highwater=highwater,
                )
                await consumer.seek_to_beginning(tp)

    async def commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        """Commit ``offset`` for ``tp``; the records before it are stored, so this is safe."""
        try:
            # aiokafka retries a commit on its own for as long as the error looks retriable
            # (an unknown topic after the broker came back empty, for instance); the timeout
            # turns that into a reconnect of the whole consumer, which recovers.
            await asyncio.wait_for(
                consumer.commit({tp: offset}), self._settings.kafka_timeout_seconds
            )
        except CommitFailedError as exc:
            # The partition moved to another member; it re-reads from the last commit and the
            # dedupe marks turn the repeats into no-ops.
            log.warning("commit failed after rebalance", partition=str(tp), error=str(exc))

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode_event(record.value)
        except EventDecodeError as exc:
            await self._deadletter(record, DeadLetter(exc.reason, str(exc)))
            EVENTS_CONSUMED.labels(self._service, record.topic, "undecodable", "deadlettered").inc()
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self._service, record.topic, event.type, "ignored").inc()
            return
        structlog.contextvars.bind_contextvars(event_id=str(event.id), event_type=str(event.type))
        try:
            outcome = await self._handle_with_retries(record, event, handler)
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type")
        EVENTS_CONSUMED.labels(self._service, record.topic, event.type, outcome).inc()

    async def _handle_with_retries(
        self, record: ConsumerRecord[bytes, bytes], event: CloudEvent, handler: Handler
    ) -> str:
        backoff = Backoff(initial=0.05, maximum=10.0)
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                outcome = await self.apply(event, handler)
                HANDLER_DURATION.labels(self._service, event.type).observe(
                    time.perf_counter() - started
                )
                return outcome
            except UnprocessableEvent as exc:
                await self._deadletter(record, DeadLetter(exc.reason, str(exc)))
                return "deadlettered"
            except TRANSIENT_ERRORS as exc:
                stop_if_cancelled()
                HANDLER_RETRIES.labels(self._service, "transient").inc()
                if self.stopping.is_set():
                    raise _StopRequested from exc  # not handled, not committed: redelivered
                delay = backoff.next_delay()
                log.warning(
                    "handler hit a transient error, retrying",
                    error=repr(exc),
                    retry_in=round(delay, 2),
                )
                await pause(delay, self.stopping)
            except Exception as exc:
                stop_if_cancelled()
                failures += 1
                HANDLER_RETRIES.labels(self._service, "failure").inc()
                if failures >= self._max_attempts:
                    log.exception("handler failed, dead-lettering the event", attempts=failures)
                    await self._deadletter(
                        record, DeadLetter("handler_failed", f"{type(exc).__name__}: {exc}")
                    )
                    return "deadlettered"
                await pause(backoff.next_delay(), self.stopping)

    async def _apply_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Apply a whole fetched batch in ONE transaction: all effects and marks, or none.

        Opt-in (``transaction_per_batch``) because a handler then reads the state as it was
        before the batch: fine for counters, wrong for a handler that reads what an earlier
        event of the same batch wrote. Returns False - nothing stored - when anything is out of
        the ordinary (an undecodable record, a handler error, a concurrent delivery), and the
        caller falls back to the per-event path, which dead-letters and retries as usual.
        """
        work: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent, Handler | None]] = []
        for record in records:
            try:
                event = decode_event(record.value)
            except EventDecodeError:
                return False
            work.append((record, event, self._handlers.get(event.type)))
        handled: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent, Handler]] = [
            (record, event, h) for record, event, h in work if h is not None
        ]
        marks = [self._settings.key(self._service, "seen", str(e.id)) for _, e, _ in handled]
        outcomes: list[str] = []
        started = time.perf_counter()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if marks:
                    await pipe.watch(*marks)
                    already = await pipe.mget(marks)
                else:
                    already = []
                pipe.multi()  # type: ignore[no-untyped-call]
                fresh: set[str] = set()
                tx = Transaction(pipe=pipe, redis=self._redis, outbox=self._outbox)
                for (_, event, handler), seen, mark in zip(handled, already, marks, strict=True):
                    if seen is not None or mark in fresh:
                        outcomes.append("duplicate")
                        continue
                    fresh.add(mark)
                    await handler(event, tx)
                    pipe.set(mark, b"1", ex=self._settings.dedupe_ttl_seconds)
                    outcomes.append("handled")
                tx.finish()
                await pipe.execute()
        except Exception:
            stop_if_cancelled()
            return False
        per_event = (time.perf_counter() - started) / max(1, len(handled))
        for (record, event, _), outcome in zip(handled, outcomes, strict=True):
            EVENTS_CONSUMED.labels(self._service, record.topic, event.type, outcome).inc()
            HANDLER_DURATION.labels(self._service, event.type).observe(per_event)
        for record, event, maybe_handler in work:
            if maybe_handler is None:
                EVENTS_CONSUMED.labels(self._service, record.topic, event.type, "ignored").inc()
        return True

    async def apply(self, event: CloudEvent, handler: Handler) -> str:
        """Run ``handler`` for ``event`` at most once in effect: 'handled' or 'duplicate'."""
        mark = self._settings.key(self._service, "seen", str(event.id))
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(mark)
            if await pipe.exists(mark):
                return "duplicate"
            pipe.multi()  # type: ignore[no-untyped-call]
            tx = Transaction(pipe=pipe, redis=self._redis, outbox=self._outbox)
            await handler(event, tx)
            tx.finish()
            pipe.set(mark, b"1", ex=self._settings.dedupe_ttl_seconds)
            try:
                await pipe.execute()
            except WatchError:
                return "duplicate"  # another delivery of this event stored its effect first
        return "handled"

    async def _deadletter(self, record: ConsumerRecord[bytes, bytes], letter: DeadLetter) -> None:
        headers = [
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")],
            ("dlq_reason", letter.reason.encode()),
            ("dlq_detail", letter.detail[:1000].encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer_group", self._group_id.encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        backoff = Backoff(initial=0.1, maximum=10.0)
        # The offset is committed only after the dead letter is stored, so keep trying.
        while True:
            try:
                await self._producer.send(
                    self._deadletter_topic, record.key, record.value or b"", headers
                )
                break
            except Exception as exc:
                stop_if_cancelled()
                if self.stopping.is_set():
                    raise _StopRequested from exc  # not dead-lettered, not committed
                delay = backoff.next_delay()
                log.warning(
                    "dead-letter publish failed, retrying",
                    error=repr(exc),
                    retry_in=round(delay, 2),
                )
                await pause(delay, self.stopping)
        log.warning(
            "event dead-lettered",
            reason=letter.reason,
            detail=letter.detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        EVENTS_DEADLETTERED.labels(self._service, record.topic, letter.reason).inc()


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    try:
        await asyncio.wait_for(consumer.stop(), 10)
    except Exception as exc:
        log.debug("consumer stop raised", error=repr(exc))


__all__ = [
    "DeadLetter",
    "EventConsumer",
    "Handler",
    "Transaction",
    "TransientError",
    "UnprocessableEvent",
]
