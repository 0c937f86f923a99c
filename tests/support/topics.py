"""Reading a Kafka topic in a test: wait until the expected events are there (a count or a
predicate) under a deadline; and, only where a test asserts that something did not happen,
watch for a named absence window that nothing more arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer

from services.contracts import CloudEvent, Topic, decode_event
from services.plumbing.settings import HubSettings

WITHIN = 30.0
"""Seconds the expected events may take to reach the topic."""

ABSENCE_WINDOW = 1.0
"""Seconds a test watches for an event that must not come (a duplicate, a refused write's
event): long enough for the relay to have shipped anything staged, short enough to keep the
suite fast. Only absence checks wait it out; reads that expect events stop when they are in."""

Expected = Callable[[list[CloudEvent]], bool]


class TopicReader:
    """A reader of one topic from its first event; ``seen`` holds everything read so far."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.seen: list[CloudEvent] = []

    async def _poll(self, seconds: float) -> None:
        batch = await self._consumer.getmany(timeout_ms=max(1, int(seconds * 1000)))
        self.seen.extend(decode_event(r.value) for rs in batch.values() for r in rs)

    async def until(
        self, count: int | None = None, *, expected: Expected | None = None, within: float = WITHIN
    ) -> list[CloudEvent]:
        """Everything read once at least ``count`` events are in, or once ``expected`` holds of
        them; fails when the deadline passes first."""
        if (count is None) == (expected is None):
            raise TypeError("give either count or expected")
        done: Expected = expected or (lambda events: len(events) >= (count or 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done(self.seen):
            left = deadline - loop.time()
            assert left > 0, f"the expected events did not arrive within {within} s: {self.seen}"
            await self._poll(min(left, 0.2))
        return list(self.seen)

    async def arriving_within(self, absence_window: float = ABSENCE_WINDOW) -> list[CloudEvent]:
        """The events that arrive during ``absence_window`` seconds from now (a test that
        asserts absence expects none)."""
        before = len(self.seen)
        loop = asyncio.get_running_loop()
        end = loop.time() + absence_window
        while (left := end - loop.time()) > 0:
            await self._poll(min(left, 0.2))
        return self.seen[before:]


@asynccontextmanager
async def reading(settings: HubSettings, topic: Topic) -> AsyncIterator[TopicReader]:
    """A reader of this test's ``topic`` (its suffix from ``settings``), from the beginning."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        yield TopicReader(consumer)
    finally:
        await consumer.stop()


async def events_on(
    settings: HubSettings,
    topic: Topic,
    count: int | None = None,
    *,
    expected: Expected | None = None,
    within: float = WITHIN,
) -> list[CloudEvent]:
    """The events on ``topic`` once ``count`` are in (or ``expected`` holds of them)."""
    async with reading(settings, topic) as reader:
        return await reader.until(count, expected=expected, within=within)


async def events_after(
    settings: HubSettings,
    topic: Topic,
    seen: list[CloudEvent],
    absence_window: float = ABSENCE_WINDOW,
) -> list[CloudEvent]:
    """The events on ``topic`` beyond the ``seen`` ones, watched for ``absence_window``
    seconds: what a test that asserts "nothing more" expects to be empty."""
    async with reading(settings, topic) as reader:
        await reader.until(len(seen))
        await reader.arriving_within(absence_window)
        return reader.seen[len(seen) :]
