"""The batch path's commit script: counters and dedupe marks of a transaction, all or nothing.

These drive ``EventConsumer.process_records`` with hand-made records (no broker round trip),
so each test controls exactly which events one batch holds.
"""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka.structs import ConsumerRecord
from redis.exceptions import ResponseError

from services.contracts import CloudEvent, Topic, encode_event
from services.plumbing.consumer import EventConsumer, Handler, Transaction, queue_commit
from tests.integration.plumbing.support import SERVICE, Wiring, make_event

pytestmark = pytest.mark.integration


def record(wiring: Wiring, value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    """A record of the mobile topic as aiokafka would hand it over."""
    return ConsumerRecord(
        topic=wiring.settings.topic(Topic.MOBILE),
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"visit",
        value=value,
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=len(value),
        headers=[],
    )


def records(wiring: Wiring, events: list[CloudEvent]) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(wiring, encode_event(e), offset) for offset, e in enumerate(events)]


def counting_only(wiring: Wiring) -> Handler:
    """Counts each event through ``tx.hincrby`` alone: the commit script is its whole effect."""

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        tx.hincrby(wiring.effects_key, str(event.id))
        tx.hincrby(wiring.effects_key, "all")

    return handle


def batch_consumer(wiring: Wiring, handler: Handler) -> EventConsumer:
    return wiring.consumer(handler, transaction_per_batch=True, max_attempts=1)


def mark(wiring: Wiring, event: CloudEvent) -> str:
    return wiring.settings.key(SERVICE, "seen", str(event.id))


async def test_a_duplicate_within_one_batch_is_counted_once(wiring: Wiring) -> None:
    events = [make_event("visit-1", seq=i) for i in range(5)]
    consumer = batch_consumer(wiring, counting_only(wiring))
    await consumer.process_records(records(wiring, [*events, events[2], events[0]]))
    assert await wiring.effects() == {"all": 5, **{str(e.id): 1 for e in events}}


async def test_a_duplicate_in_a_later_batch_is_counted_once(wiring: Wiring) -> None:
    events = [make_event("visit-1", seq=i) for i in range(5)]
    consumer = batch_consumer(wiring, counting_only(wiring))
    await consumer.process_records(records(wiring, events[:3]))
    await consumer.process_records(records(wiring, events[1:]))
    assert await wiring.effects() == {"all": 5, **{str(e.id): 1 for e in events}}


async def test_the_per_event_fallback_applies_the_transaction_counters(wiring: Wiring) -> None:
    # An undecodable record sends the whole batch down the per-event path.
    events = [make_event("visit-1", seq=i) for i in range(3)]
    consumer = batch_consumer(wiring, counting_only(wiring))
    batch = [*records(wiring, events), record(wiring, b"not json", offset=3)]
    await consumer.process_records(batch)
    await consumer.process_records(records(wiring, events))  # and again, one by one
    assert await wiring.effects() == {"all": 3, **{str(e.id): 1 for e in events}}


async def test_an_event_stored_by_another_delivery_meanwhile_is_counted_once(
    wiring: Wiring,
) -> None:
    # Between the batch's read of its marks and its commit, a concurrent delivery (a rebalance)
    # stores one of its events: the batch must not count that event a second time.
    events = [make_event("visit-1", seq=i) for i in range(4)]
    raced = events[3]
    counting = counting_only(wiring)

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        if event.id == events[0].id and not await wiring.redis.exists(mark(wiring, raced)):
            async with wiring.redis.pipeline(transaction=True) as other:
                other_tx = Transaction(pipe=other, redis=wiring.redis, outbox=wiring.outbox)
                await counting(raced, other_tx)
                queue_commit(other, [mark(wiring, raced)], other_tx.counters, 3600)
                await other.execute()
        await counting(event, tx)

    await batch_consumer(wiring, handle).process_records(records(wiring, events))
    assert await wiring.effects() == {"all": 4, **{str(e.id): 1 for e in events}}


async def test_a_batch_with_its_own_pipeline_commands_is_stored_once(wiring: Wiring) -> None:
    # Handlers that queue commands besides counters take the WATCHed path.
    events = [make_event("visit-1", seq=i) for i in range(4)]
    counting = counting_only(wiring)

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        await counting(event, tx)
        tx.pipe.rpush(wiring.settings.key(SERVICE, "order"), str(event.id))

    consumer = batch_consumer(wiring, handle)
    await consumer.process_records(records(wiring, [*events, events[1]]))
    await consumer.process_records(records(wiring, events))
    order = await wiring.redis.lrange(wiring.settings.key(SERVICE, "order"), 0, -1)
    assert [raw.decode() for raw in order] == [str(e.id) for e in events]


async def test_a_commit_script_that_fails_stores_nothing(wiring: Wiring) -> None:
    counters = wiring.settings.key(SERVICE, "counters")
    broken = wiring.settings.key(SERVICE, "not-a-hash")
    await wiring.redis.hset(counters, "before", 7)
    await wiring.redis.set(broken, "a string")
    marks = [wiring.settings.key(SERVICE, "seen", name) for name in ("a", "b")]
    changes = Counter({(counters, "before"): 2, (counters, "new"): 1, (broken, "x"): 1})
    async with wiring.redis.pipeline(transaction=True) as pipe:
        queue_commit(pipe, marks, changes, 3600)
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await pipe.execute()
    assert await wiring.redis.hgetall(counters) == {b"before": b"7"}
    assert await wiring.redis.exists(*marks) == 0


async def test_a_commit_script_refuses_a_batch_whose_mark_is_already_set(
    wiring: Wiring,
) -> None:
    counters = wiring.settings.key(SERVICE, "counters")
    marks = [wiring.settings.key(SERVICE, "seen", name) for name in ("a", "b")]
    await wiring.redis.set(marks[1], b"1")
    async with wiring.redis.pipeline(transaction=True) as pipe:
        queue_commit(pipe, marks, Counter({(counters, "n"): 1}), 3600)
        with pytest.raises(ResponseError, match="stored meanwhile"):
            await pipe.execute()
    assert await wiring.redis.exists(counters, marks[0]) == 0


async def test_the_marks_expire_after_the_dedupe_window(wiring: Wiring) -> None:
    events = [make_event("visit-1", seq=i) for i in range(3)]
    await batch_consumer(wiring, counting_only(wiring)).process_records(records(wiring, events))
    window_ms = wiring.settings.dedupe_ttl_seconds * 1000
    for event in events:
        assert 0 < await wiring.redis.pttl(mark(wiring, event)) <= window_ms


async def test_a_counter_field_with_a_newline_is_counted(wiring: Wiring) -> None:
    # Increments travel as lines of one argument; a field holding a newline goes on its own.
    counters = wiring.settings.key(SERVICE, "counters")
    changes = Counter({(counters, "two\nlines"): 3, (counters, "plain"): 2, (counters, "zero"): 0})
    async with wiring.redis.pipeline(transaction=True) as pipe:
        queue_commit(pipe, [wiring.settings.key(SERVICE, "seen", "a")], changes, 3600)
        await pipe.execute()
    assert await wiring.redis.hgetall(counters) == {b"two\nlines": b"3", b"plain": b"2"}
