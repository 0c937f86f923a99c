"""Helpers for the plumbing's integration tests: an event factory, a pretend service's wiring,
and waiting for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from services.contracts import CloudEvent
from services.plumbing.consumer import EventConsumer, Handler, Transaction
from services.plumbing.outbox import Outbox, OutboxRelay
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics
from tests.factories import contact_recorded

SERVICE = "probe"


def make_event(subject: str, seq: int = 0) -> CloudEvent:
    """A real contract event keyed by ``subject``; ``seq`` lets a test check ordering."""
    return contact_recorded(visit_id=subject, seq=seq)


@dataclass
class Wiring:
    """The plumbing of one pretend service, wired the way ServiceRuntime wires it."""

    settings: HubSettings
    redis: Redis
    producer: EventProducer
    outbox: Outbox
    relay: OutboxRelay

    def consumer(self, handler: Handler, **kwargs: object) -> EventConsumer:
        from services.contracts import EventType

        return EventConsumer(
            settings=self.settings,
            service=SERVICE,
            group_id=f"kanalhub.{SERVICE}{self.settings.topic_suffix}",
            redis=self.redis,
            producer=self.producer,
            outbox=self.outbox,
            handlers={EventType.MOBILE_CONTACT_RECORDED: handler},
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def effects_key(self) -> str:
        return self.settings.key(SERVICE, "effects")

    def counting_handler(self) -> Handler:
        """Counts each event's effect per event id, and records the order per subject."""

        async def handle(event: CloudEvent, tx: Transaction) -> None:
            tx.pipe.hincrby(self.effects_key, str(event.id), 1)
            tx.pipe.rpush(self.settings.key(SERVICE, "order", event.subject), str(event.id))

        return handle

    async def effects(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self.effects_key)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def consume_until(
        self, count: int, handler: Handler | None = None, within: float = 30.0, linger: float = 0
    ) -> None:
        """Run a consumer until ``count`` distinct events had their effect, then ``linger`` s."""
        task = asyncio.create_task(self.consumer(handler or self.counting_handler()).run())
        try:

            async def all_seen() -> bool:
                return len(await self.effects()) >= count

            await eventually(all_seen, within=within)
            await asyncio.sleep(linger)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def wired(settings: HubSettings, redis: Redis) -> AsyncIterator[Wiring]:
    """The pretend service's plumbing on ``settings``' broker, topics and keys."""
    await ensure_topics(settings)
    producer = EventProducer(settings, client_id="kanalhub-test")
    await producer.start()
    outbox = Outbox(redis, settings, SERVICE)
    relay = OutboxRelay(redis, producer, outbox, settings, lease_ms=1000)
    try:
        yield Wiring(settings, redis, producer, outbox, relay)
    finally:
        await producer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 30.0, interval: float = 0.1
) -> None:
    """Wait until ``check`` is true; fail with a clear message after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def drain_relay(relay: OutboxRelay, outbox: Outbox, within: float = 30.0) -> None:
    """Step the relay until the outbox is empty."""

    async def empty() -> bool:
        await relay.step()
        return await outbox.depth() == 0

    await eventually(empty, within=within, interval=0)
