"""The one consumer loop every service uses.

For each record: decode -> dedupe -> handle -> store, then commit the offset by hand.

- **Effect and dedupe mark are one atomic step.** The handler queues its writes into a MULTI
  pipeline; the loop adds the marks (``SET <seen:event-id> 1 EX ttl``) to the same transaction
  and WATCHes them, so two deliveries racing each other (a rebalance) cannot both apply. (A
  batch whose handlers only count needs no WATCH: the commit script itself refuses it if a mark
  appeared.) A plain ``SET NX`` before the handler would lose the effect if the process died
  between mark and effect; one after the handler would double it.
- **Counters and marks are one script.** Counter changes a handler declares with
  :meth:`Transaction.hincrby` are summed over the transaction and applied, with the marks, by
  one Lua script at the end of the MULTI (:data:`COMMIT_SCRIPT`): one command per batch instead
  of one SET per event and one HINCRBY per changed field. The script sets the marks only after
  every increment succeeded and undoes its increments when one fails, so a failing script
  stores neither counts nor marks.
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
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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
from services.plumbing.fetch_pacing import pace_empty_fetches
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.logging import get_logger
from services.plumbing.metrics import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEADLETTERED,
    HANDLER_DURATION,
    HANDLER_RETRIES,
)
from services.plumbing.outbox import Outbox
from services.plumbing.outbox_quarantine import refusal_reason, refused_for_good
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings

log = get_logger(__name__)


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


# The marks and the summed counter changes of one transaction, applied at once - or, when any
# of the marks is already set (another delivery of one of its events was stored since the marks
# were read), nothing: an error reply, so the caller falls back to its per-event path.
# KEYS: the dedupe marks to set, then every hash an increment touches.
# ARGV[1] the marks' TTL in seconds, ARGV[2] the number of marks, ARGV[3] the increments as
# lines "<index of the hash in KEYS> <amount> <field>\n", then any increment whose field holds a
# newline as a triple of arguments (index, amount, field). One argument for thousands of
# increments: redis-py packs every argument in Python, which cost more than the commands did.
# Increments go first; if one fails (a key of another type, a field that is not an integer)
# those already made are taken back and the error is returned before any mark is set, so the
# script stores all of it or nothing (MULTI itself never rolls back).
COMMIT_SCRIPT = r"""
for i = 1, tonumber(ARGV[2]) do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return redis.error_reply('batch not stored: an event of it was stored meanwhile')
  end
end
local keys, amounts, fields, n = {}, {}, {}, 0
local function add(index, amount, field)
  local key = KEYS[tonumber(index)]
  local done = redis.pcall('HINCRBY', key, field, amount)
  if type(done) == 'table' and done.err then
    for i = n, 1, -1 do
      if redis.call('HINCRBY', keys[i], fields[i], -tonumber(amounts[i])) == 0 then
        redis.call('HDEL', keys[i], fields[i])  -- most likely one this script created
      end
    end
    return done.err
  end
  n = n + 1
  keys[n], amounts[n], fields[n] = key, amount, field
end
for index, amount, field in string.gmatch(ARGV[3], '(%d+) (%-?%d+) ([^\n]*)\n') do
  local err = add(index, amount, field)
  if err then return redis.error_reply('batch not stored: ' .. err) end
end
for i = 4, #ARGV, 3 do
  local err = add(ARGV[i], ARGV[i + 1], ARGV[i + 2])
  if err then return redis.error_reply('batch not stored: ' .. err) end
end
for i = 1, tonumber(ARGV[2]) do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
return n
"""
"""Lua: set the dedupe marks and apply the counter increments of one transaction, or - if a
mark is set already or an increment fails - none of it."""


def queue_commit(
    pipe: Pipeline, marks: Sequence[str], counters: Mapping[tuple[str, str], int], ttl: int
) -> None:
    """Queue :data:`COMMIT_SCRIPT` on ``pipe``: set ``marks`` (EX ``ttl``) and add ``counters``
    (``(hash key, field) -> amount``; zero amounts are skipped) when the transaction executes.
    """
    hashes: dict[str, int] = {}
    lines: list[str] = []
    odd: list[str | int] = []
    first_hash = len(marks) + 1  # KEYS is 1-based in Lua and starts with the marks
    for (key, name), amount in counters.items():
        if not amount:
            continue
        index = hashes.get(key)
        if index is None:
            index = hashes[key] = first_hash + len(hashes)
        if "\n" in name:
            odd += (index, amount, name)
        else:
            lines.append(f"{index} {int(amount)} {name}\n")
    # EVAL with the body rather than EVALSHA: the server caches the compiled script by its hash
    # anyway, and EVAL cannot fail with NOSCRIPT after a restart or failover (which inside a
    # MULTI would fail the whole batch).
    pipe.eval(
        COMMIT_SCRIPT,
        len(marks) + len(hashes),
        *marks,
        *hashes,
        ttl,
        len(marks),
        "".join(lines),
        *odd,
    )


@dataclass(frozen=True)
class Transaction:
    """What a handler gets besides the event.

    ``pipe`` is a MULTI pipeline: commands queued on it run atomically with the dedupe mark.
    ``redis`` is a plain client for the reads a handler needs before deciding what to write.
    ``emit`` stages a follow-up event in the service's outbox within the same transaction.
    ``hincrby`` adds to a hash counter when the transaction commits, summed over its events.
    """

    pipe: Pipeline
    redis: Redis
    outbox: Outbox
    counters: Counter[tuple[str, str]] = field(default_factory=Counter)
    """``(hash key, field) -> amount`` to add when the transaction commits; the consumer applies
    them in one script with the dedupe marks (see :data:`COMMIT_SCRIPT`). Add to it directly
    (``tx.counters[key, field] += n``) or through :meth:`hincrby`."""

    def hincrby(self, key: str, name: str, amount: int = 1) -> None:
        """Add ``amount`` to field ``name`` of hash ``key`` if, and only if, this transaction
        commits. Summed over the transaction: 500 events adding 1 to one field are one
        increment by 500."""
        self.counters[(key, name)] += amount

    def emit(self, event: CloudEvent) -> None:
        """Publish ``event`` if, and only if, this transaction commits."""
        self.outbox.stage(self.pipe, event)


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
                await within(
                    consumer.start(), self._settings.kafka_timeout_seconds, "consumer start"
                )
                if self._settings.empty_fetch_pause_seconds > 0:
                    pace_empty_fetches(consumer, self._settings.empty_fetch_pause_seconds)
                consumer.subscribe(self.topics, listener=_Rebalance(self))
                log.info("consumer started", group=self._group_id, topics=self.topics)
                backoff.reset()
                while not self.stopping.is_set():
                    await self.poll_once(consumer)
                    # aiokafka's fetcher can swallow a cancel that lands while it waits (its
                    # getmany then just answers empty): without this the task would poll on
                    # for ever after being cancelled (a CI run hung here for 300 s)
                    stop_if_cancelled()
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
            **kafka_client_options(self._settings),
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
        the ordinary (an undecodable record, a handler error, a concurrent delivery, a failing
        commit script), and the caller falls back to the per-event path, which dead-letters and
        retries as usual.
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
        # (topic, type, outcome) -> events: the Prometheus counters move once per batch and
        # label set, not once per event.
        outcomes: Counter[tuple[str, str, str]] = Counter()
        started = time.perf_counter()
        try:
            already = await self._redis.mget(marks) if marks else []
            fresh: list[tuple[CloudEvent, Handler, str]] = []
            planned: set[str] = set()
            for (record, event, handler), seen, mark in zip(handled, already, marks, strict=True):
                if seen is not None or mark in planned:
                    outcomes[(record.topic, event.type, "duplicate")] += 1
                    continue
                planned.add(mark)
                fresh.append((event, handler, mark))
                outcomes[(record.topic, event.type, "handled")] += 1
            # First without WATCH: the commit script refuses the batch if any mark got set since
            # the MGET, which is all the protection counter-only effects need (WATCH on
            # thousands of keys costs the server O(n^2)). Only if handlers queued commands of
            # their own is the batch built again with the marks of those events WATCHed.
            unguarded = await self._store_batch(fresh, watch=[])
            if unguarded and await self._store_batch(fresh, watch=unguarded):
                return False  # the handlers changed their minds between the two runs
        except Exception:
            stop_if_cancelled()
            return False
        per_event = (time.perf_counter() - started) / max(1, len(handled))
        for (topic, event_type, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(self._service, topic, event_type, outcome).inc(count)
        handled_types = Counter(event.type for _, event, _ in handled)
        for event_type, count in handled_types.items():
            # A histogram has no "observe n times"; the batch's events share one duration.
            duration = HANDLER_DURATION.labels(self._service, event_type)
            for _ in range(count):
                duration.observe(per_event)
        ignored: Counter[tuple[str, str]] = Counter(
            (record.topic, event.type) for record, event, handler in work if handler is None
        )
        for (topic, event_type), count in ignored.items():
            EVENTS_CONSUMED.labels(self._service, topic, event_type, "ignored").inc(count)
        return True

    async def _store_batch(
        self, fresh: Sequence[tuple[CloudEvent, Handler, str]], watch: Sequence[str]
    ) -> list[str]:
        """Run the handlers of ``fresh`` (event, handler, mark) into one MULTI and commit it
        with the marks, WATCHing the marks ``watch`` first. Returns ``[]`` when stored, or -
        nothing stored - the marks of the events whose handlers queued commands on the
        pipeline that ``watch`` did not cover.

        Raises when the batch cannot be stored: ``WatchError``, a mark set meanwhile (the
        commit script refuses), a handler's error.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            if watch:
                await pipe.watch(*watch)
                if any(seen is not None for seen in await pipe.mget(watch)):
                    raise WatchError("an event of the batch was stored meanwhile")
            pipe.multi()  # type: ignore[no-untyped-call]
            tx = Transaction(pipe=pipe, redis=self._redis, outbox=self._outbox)
            queued_by: list[str] = []
            for event, handler, mark in fresh:
                before = len(pipe.command_stack)
                await handler(event, tx)
                if len(pipe.command_stack) != before:
                    queued_by.append(mark)
            covered = set(watch)
            unguarded = [mark for mark in queued_by if mark not in covered]
            if unguarded:
                return unguarded  # leaving the block resets the pipeline: nothing is sent
            if fresh or tx.counters:
                queue_commit(
                    pipe,
                    [mark for _, _, mark in fresh],
                    tx.counters,
                    self._settings.dedupe_ttl_seconds,
                )
                await pipe.execute()
        return []

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
            queue_commit(pipe, [mark], tx.counters, self._settings.dedupe_ttl_seconds)
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
        value = record.value or b""
        backoff = Backoff(initial=0.1, maximum=10.0)
        # The offset is committed only after the dead letter is stored, so keep trying.
        while True:
            try:
                await self._producer.send(self._deadletter_topic, record.key, value, headers)
                break
            except Exception as exc:
                stop_if_cancelled()
                if self.stopping.is_set():
                    raise _StopRequested from exc  # not dead-lettered, not committed
                if value and refused_for_good(exc):
                    # The record with the dlq_ headers is more than the broker takes: retrying
                    # would stop this partition for ever. The dead letter goes without the
                    # value, which is still on its topic at the offset the headers name.
                    value = b""
                    headers.append(("dlq_value_omitted", refusal_reason(exc).encode()))
                    continue
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


async def within(step: Awaitable[None], seconds: float, what: str) -> None:
    """Run ``step`` for at most ``seconds``; on timeout abandon it and raise TimeoutError.

    Not ``asyncio.wait_for``: on timeout it cancels the step and then *waits for it to end*,
    and aiokafka's start and stop do not always honour a cancel (its group coordinator waits
    on its own task without a bound). After a SIGKILL of the broker that held the group's
    coordinator, consumers of a 3-node cluster waited there for good: no reconnect, nothing
    counted, ``/readyz`` still 200 (the fault suite's controller-kill scenario). An abandoned
    step is cancelled and left to end on its own; the loop goes on with a new consumer.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        task.result()  # its exception, if it raised
        return
    task.cancel()
    task.add_done_callback(_forget)
    raise TimeoutError(f"{what} did not finish within {seconds:g} s")


def _forget(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned step's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    try:
        await within(consumer.stop(), 10, "consumer stop")
    except Exception as exc:
        log.warning("consumer did not stop cleanly; abandoned", error=repr(exc))


__all__ = [
    "COMMIT_SCRIPT",
    "DeadLetter",
    "EventConsumer",
    "Handler",
    "Transaction",
    "TransientError",
    "UnprocessableEvent",
    "queue_commit",
]
