"""The one Kafka producer helper: ``acks="all"``, key = aggregate id, a timeout on every call.

Idempotent producers and transactions are deliberately not used (the embedded Tansu broker
lacks them, see docs/decisions/0001-embedded-broker.md). A resend after an unacknowledged send
can therefore duplicate a record; every consumer dedupes by event id, which absorbs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import RecordMetadata, TopicPartition

from services.contracts import CloudEvent, encode_event, kafka_headers, topic_for
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.settings import HubSettings

Headers = Sequence[tuple[str, bytes]]


class ProducerNotStarted(RuntimeError):
    """Raised when a send is attempted before the broker was reached."""


class EventProducer:
    """A started-on-demand aiokafka producer that never waits longer than the configured timeout."""

    def __init__(self, settings: HubSettings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._prober: AIOKafkaConsumer | None = None

    @property
    def started(self) -> bool:
        """True once the broker answered and the producer is usable."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect to the broker; raises if it does not answer within the timeout."""
        if self._producer is not None:
            return
        timeout = self._settings.kafka_timeout_seconds
        producer = AIOKafkaProducer(
            **kafka_client_options(self._settings),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=2,
            request_timeout_ms=int(timeout * 1000),
            retry_backoff_ms=100,
        )
        try:
            await asyncio.wait_for(producer.start(), timeout)
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush and close; safe to call when never started."""
        producer, self._producer = self._producer, None
        prober, self._prober = self._prober, None
        if prober is not None:
            await asyncio.wait_for(prober.stop(), self._settings.kafka_timeout_seconds)
        if producer is not None:
            await asyncio.wait_for(producer.stop(), self._settings.kafka_timeout_seconds)

    async def log_ends(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The broker's log-end offset (next offset to be written) of each partition.

        Lets a relay ask whether the broker still holds what it acknowledged: a broker that
        lost records reports an end at or below the last offset acknowledged there. A
        group-less consumer, started on first use and kept, does the ListOffsets requests.
        """
        timeout = self._settings.kafka_timeout_seconds
        if self._prober is None:
            prober = AIOKafkaConsumer(
                **kafka_client_options(self._settings),
                client_id=f"{self._client_id}-probe",
                enable_auto_commit=False,
                request_timeout_ms=int(timeout * 1000) + 30_000,
            )
            try:
                await asyncio.wait_for(prober.start(), timeout)
            except BaseException:
                await prober.stop()
                raise
            self._prober = prober
        ends = await asyncio.wait_for(
            self._prober.end_offsets([TopicPartition(t, p) for t, p in partitions]), timeout
        )
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def send(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Headers = ()
    ) -> RecordMetadata:
        """Send one record and wait for the broker's acknowledgement (all in-sync replicas)."""
        if self._producer is None:
            raise ProducerNotStarted("the Kafka producer is not connected yet")
        raw_key = key.encode() if isinstance(key, str) else key
        return await asyncio.wait_for(
            self._producer.send_and_wait(topic, value=value, key=raw_key, headers=list(headers)),
            self._settings.kafka_timeout_seconds,
        )

    async def publish(self, event: CloudEvent) -> RecordMetadata:
        """Send an event directly (not through the outbox) to its contract topic, keyed by subject.

        Services publish through the outbox; this is for tools (replay, redrive) and tests.
        """
        return await self.send(
            self._settings.topic(topic_for(event.type)),
            event.subject,
            encode_event(event),
            kafka_headers(event),
        )

    async def check(self) -> bool:
        """True when the broker answers a metadata request within the timeout."""
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(
                self._producer.client.fetch_all_metadata(),
                min(2.0, self._settings.kafka_timeout_seconds),
            )
        except Exception:
            return False
        return True
