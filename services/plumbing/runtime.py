"""A service's connections and background tasks, started and stopped by its lifespan.

Start-up never fails because the broker is down: Redis and the HTTP server come up at once,
Kafka is reached in a background task that retries with backoff and says so in the log, and
``/readyz`` answers 503 until both dependencies answer. That way a broker outage is visible,
not a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from services.contracts import EventType
from services.plumbing.backoff import Backoff, stop_if_cancelled
from services.plumbing.consumer import EventConsumer, Handler
from services.plumbing.logging import get_logger
from services.plumbing.metrics import DEPENDENCY_UP
from services.plumbing.outbox import Outbox, OutboxRelay
from services.plumbing.producer import EventProducer
from services.plumbing.settings import ServiceSettings
from services.plumbing.topics import ensure_topics

log = get_logger(__name__)


def connect_redis(settings: ServiceSettings) -> Redis:
    """A redis-py asyncio client with timeouts on connect and on every command.

    A command that meets a closed connection is sent once more on a fresh one: after Redis
    restarts, every pooled connection is dead, and without the retry each would fail one
    request with a 500. Only connection errors are retried (not timeouts, where the command
    may have run); a transaction that WATCHes is never retried by redis-py, and what else is
    sent twice is idempotent here (outbox entries carry event ids that consumers dedupe).
    """
    hub = settings.hub
    return Redis.from_url(
        hub.redis_url,
        socket_timeout=hub.redis_timeout_seconds,
        socket_connect_timeout=hub.redis_timeout_seconds,
        health_check_interval=30,
        client_name=f"kanalhub-{settings.service}",
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )


class ServiceRuntime:
    """Redis client, outbox + relay, producer and (optionally) the consumer of one service."""

    def __init__(
        self,
        settings: ServiceSettings,
        handlers: Mapping[EventType, Handler] | None = None,
        *,
        transaction_per_batch: bool = False,
    ) -> None:
        self.settings = settings
        self.service = settings.service
        self.redis = connect_redis(settings)
        self.producer = EventProducer(settings.hub, client_id=f"kanalhub-{self.service}")
        self.outbox = Outbox(self.redis, settings.hub, self.service)
        self.relay = OutboxRelay(self.redis, self.producer, self.outbox, settings.hub)
        self.consumer = (
            EventConsumer(
                settings=settings.hub,
                service=self.service,
                group_id=settings.consumer_group,
                redis=self.redis,
                producer=self.producer,
                outbox=self.outbox,
                handlers=handlers,
                transaction_per_batch=transaction_per_batch,
            )
            if handlers
            else None
        )
        self.kafka_connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Spawn the background work; returns at once, whatever the broker's state."""
        self._tasks.append(asyncio.create_task(self._connect_kafka(), name="kafka-connect"))
        self._tasks.append(asyncio.create_task(self._after_kafka(self.relay.run), name="relay"))
        if self.consumer is not None:
            self._tasks.append(
                asyncio.create_task(self._after_kafka(self.consumer.run), name="consumer")
            )

    async def stop(self, drain_seconds: float = 5.0, grace_seconds: float = 5.0) -> None:
        """Drain the outbox (up to ``drain_seconds``), stop the relay and the consumer (the
        consumer finishes and commits its batch), then close the producer and Redis.

        Whatever is not drained stays in the outbox for the next start: stopping never loses
        an event, draining only makes it arrive sooner.
        """
        await self._drain_outbox(drain_seconds)
        self.relay.stopping.set()
        if self.consumer is not None:
            self.consumer.stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()  # never connected, or stuck: cancel as the last resort
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=grace_seconds)
                for task in stuck:
                    log.error("background task did not stop", task=task.get_name())
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.redis.aclose()

    async def _drain_outbox(self, seconds: float) -> None:
        if not self.kafka_connected.is_set():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while await self.outbox.depth() > 0 and loop.time() < deadline:  # noqa: ASYNC110 - polls Redis, not local state
                await asyncio.sleep(0.05)
        except Exception as exc:
            stop_if_cancelled()
            log.warning("could not drain the outbox before stopping", error=repr(exc))

    async def _connect_kafka(self) -> None:
        backoff = Backoff(initial=0.5, maximum=15.0)
        while True:
            try:
                await ensure_topics(self.settings.hub)
                await self.producer.start()
                self.kafka_connected.set()
                log.info("connected to Kafka", bootstrap=self.settings.hub.kafka_bootstrap)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                delay = backoff.next_delay()
                log.warning(
                    "Kafka not reachable yet; the service runs and /readyz says 503 until it is",
                    bootstrap=self.settings.hub.kafka_bootstrap,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(delay, 1),
                )
                await asyncio.sleep(delay)

    async def _after_kafka(self, work: Callable[[], Awaitable[None]]) -> None:
        await self.kafka_connected.wait()
        await work()

    async def readiness(self) -> dict[str, bool]:
        """Whether Redis and Kafka answer now (each probe has a short timeout)."""
        redis_ok = await self._redis_answers()
        kafka_ok = await self.producer.check()
        DEPENDENCY_UP.labels(self.service, "redis").set(int(redis_ok))
        DEPENDENCY_UP.labels(self.service, "kafka").set(int(kafka_ok))
        return {"redis": redis_ok, "kafka": kafka_ok}

    async def _redis_answers(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 2.0))
        except Exception:
            return False
