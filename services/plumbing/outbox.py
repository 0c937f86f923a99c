"""The transactional outbox: state change and event are written to Redis in one atomic step,
and a relay publishes from there to Kafka, retrying until the broker acknowledges.

Layout in Redis (keys under ``<prefix>:<service>:``):

- ``outbox`` - a Stream; one entry per event: ``id``, ``type``, ``topic``, ``key``, ``value``
  (the encoded CloudEvent) and ``headers`` (JSON list of the CloudEvents Kafka headers).
- consumer group ``relay`` on that stream - its pending-entries list holds what a relay has read
  but the broker has not yet acknowledged, so a relay that crashes loses nothing.
- ``outbox:lease`` - which relay instance may publish now. One publisher at a time is what keeps
  the events of one aggregate in order: two relays reading one group would race each other.
- ``outbox:recent`` - a copy of what the broker acknowledged in the last
  ``outbox_resend_window_seconds`` before the latest acknowledgement (trimmed as acknowledgements
  arrive, so an outage of any length keeps it). A broker that crashes can lose records it had
  already acknowledged (the embedded noida broker loses up to ~1.6 s, decision 0001); after
  any publish failure and whenever a relay takes the lease, the relay sends this window again
  before anything newer, so such records are not lost. Consumers dedupe the copies.
- ``outbox:quarantine`` - a Stream of entries the relay set aside instead of sending: malformed
  ones (a missing field, headers that are not JSON) and ones the broker refused for good (too
  large, an invalid topic). Each keeps the original fields byte for byte plus
  ``quarantine_reason``, ``quarantine_at`` and ``quarantine_entry_id`` (its outbox id); it is
  moved there in one MULTI with its XACK and XDEL from ``outbox``. Operators list, release or
  drop them (``kanalhub outbox quarantine``, :mod:`services.plumbing.outbox_quarantine`).

An entry is acknowledged and deleted only after the broker acknowledged the record. A relay that
dies between the two re-publishes the entry later; consumers dedupe by event id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from services.contracts import CloudEvent, Topic, encode_event, kafka_headers, topic_for
from services.plumbing.backoff import Backoff, pause, stop_if_cancelled
from services.plumbing.logging import get_logger
from services.plumbing.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
    OUTBOX_QUARANTINED,
    RELAY_FAILURES,
)
from services.plumbing.outbox_quarantine import (
    decode_fields,
    entry_problem,
    quarantine_fields,
    refusal_reason,
    refused_for_good,
)
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

log = get_logger(__name__)

RELAY_GROUP = "relay"

# A relay that had nothing acknowledged for this long checks, before sending anything new,
# that the broker still holds what it acknowledged last (a broker restarts in well under 1 s).
_QUIET_SECONDS = 0.5

# Take the lease if it is free, or extend it if we already hold it.
_LEASE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Outbox:
    """Stages events into the service's outbox stream, inside the caller's transaction."""

    def __init__(self, redis: Redis, settings: HubSettings, service: str) -> None:
        self._redis = redis
        self._settings = settings
        self.service = service
        self.stream = settings.key(service, "outbox")
        self.quarantine = f"{self.stream}:quarantine"
        # Every topic an entry may name: the contract's, with this hub's suffix.
        self.topics = frozenset(settings.topic(topic) for topic in Topic)

    @property
    def redis(self) -> Redis:
        """The client the outbox writes with (the operator commands use it too)."""
        return self._redis

    def entry(self, event: CloudEvent) -> dict[str, str | bytes]:
        """The stream fields for one event (also what a Lua script passes to XADD)."""
        return {
            "id": str(event.id),
            "type": str(event.type),
            "topic": self._settings.topic(topic_for(event.type)),
            "key": event.subject,
            "value": encode_event(event),
            "headers": json.dumps([[k, v.decode()] for k, v in kafka_headers(event)]),
        }

    def stage(self, pipe: Pipeline, event: CloudEvent) -> None:
        """Queue the event into ``pipe`` (a MULTI pipeline): it commits with the state change."""
        pipe.xadd(self.stream, self.entry(event))  # type: ignore[arg-type]

    async def publish(self, *events: CloudEvent) -> None:
        """Write events with no other state change (one atomic step for all of them)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for event in events:
                self.stage(pipe, event)
            await pipe.execute()

    async def depth(self) -> int:
        """Events waiting for the broker's acknowledgement."""
        return int(await self._redis.xlen(self.stream))


async def _nothing_to_acknowledge(_sent: list[tuple[str, dict[str, str]]]) -> None:
    """Re-sent events left the outbox already."""


def _ms_ago(seconds: float) -> str:
    """A stream id (milliseconds) ``seconds`` before now, for XTRIM MINID."""
    return str(int((time.time() - seconds) * 1000))


def _decode(value: Any) -> str:
    # surrogateescape: a value that is not UTF-8 (written by hand) must not fail the whole
    # read; the entry check names it, and the quarantine keeps the original bytes.
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else str(value)


class OutboxRelay:
    """Publishes the outbox stream to Kafka: in order per aggregate, removed only when acked."""

    def __init__(
        self,
        redis: Redis,
        producer: EventProducer,
        outbox: Outbox,
        settings: HubSettings,
        *,
        batch_size: int = 500,
        block_ms: int = 500,
        lease_ms: int = 10_000,
    ) -> None:
        self._redis = redis
        self._producer = producer
        self._outbox = outbox
        self._settings = settings
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._lease_ms = lease_ms
        self._lease_key = f"{outbox.stream}:lease"
        self._recent = f"{outbox.stream}:recent"
        self._resend_due = True
        # Highest offset the broker acknowledged per partition, to notice it going back.
        self._acked_offsets: dict[tuple[str, int], int] = {}
        # When the broker last acknowledged anything, and when the window was last re-sent
        # (time.monotonic()).
        self._last_ack = 0.0
        self._resent_at = 0.0
        self.consumer_name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lease = redis.register_script(_LEASE_SCRIPT)
        self._holds_lease = False
        self._group_ready = False
        self._last_gauge = 0.0
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Relay until ``stopping`` is set; every failure is logged and retried with backoff.

        Stopping is cooperative (between steps, at most one blocking read later) rather than by
        cancellation: a cancel landing inside redis-py's blocking read can leave it hanging.
        """
        backoff = Backoff(initial=0.1, maximum=5.0)
        while not self.stopping.is_set():
            try:
                while not self.stopping.is_set():
                    await self.step()
                    backoff.reset()
                    stop_if_cancelled()  # a library may have swallowed a cancel (see consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                # Whatever failed, look at the stream afresh next time: an emptied Redis has
                # lost the consumer group too, and a lost lease must be taken again.
                self._group_ready = self._holds_lease = False
                self._resend_due = True
                delay = backoff.next_delay()
                log.warning(
                    "outbox relay will retry",
                    service=self._outbox.service,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(delay, 2),
                )
                await pause(delay, self.stopping)

    async def step(self) -> int:
        """One round: hold the lease, read a batch, publish it. Returns the events published."""
        if not self._group_ready:
            await self._ensure_group()
        await self._update_gauges()
        if not await self._hold_lease():
            await pause(self._lease_ms / 3000, self.stopping)
            return 0
        if self._resend_due:
            await self._resend_recent()
        entries = await self._read(pending=True)
        if not entries:
            entries = await self._read(pending=False)
        if not entries:
            return 0
        if await self._broker_lost_records():
            await self._resend_recent()
        return await self._publish(entries)

    async def _broker_lost_records(self) -> bool:
        """After a quiet spell, ask the broker whether it still holds what it acknowledged.

        A broker can crash and come back while this relay had nothing to send, so no send
        failed. The first new record would then reveal the loss only on its own partition (its
        offset is not above the last one acknowledged there) - and records lost on the other
        partitions could fall out of the window before any record went there. One ListOffsets
        request per quiet spell checks every partition this relay wrote to.
        """
        quiet = time.monotonic() - self._last_ack > _QUIET_SECONDS
        if not (quiet and self._acked_offsets and self._window_seconds > 0):
            return False
        ends = await self._producer.log_ends(list(self._acked_offsets))
        behind = {
            f"{topic}:{partition}": end
            for (topic, partition), end in ends.items()
            if end <= self._acked_offsets[(topic, partition)]
        }
        if behind:
            log.warning(
                "the broker lost acknowledged records; re-sending the recent window",
                log_ends=behind,
            )
        return bool(behind)

    @property
    def _window_seconds(self) -> float:
        return self._settings.outbox_resend_window_seconds

    async def _ensure_group(self) -> None:
        try:
            # "0": a group created after events were written must still relay them.
            await self._redis.xgroup_create(self._outbox.stream, RELAY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _hold_lease(self) -> bool:
        result = int(
            await self._lease(keys=[self._lease_key], args=[self.consumer_name, self._lease_ms])
        )
        if result == 2 or (result == 1 and not self._holds_lease):
            # Newly the publisher: whatever the previous holder had read but not published is
            # now ours, oldest first, before anything new - that keeps per-aggregate order.
            await self._claim_all_pending()
            self._resend_due = True
            log.info("outbox relay holds the lease", service=self._outbox.service)
        self._holds_lease = result > 0
        return self._holds_lease

    async def _claim_all_pending(self) -> None:
        cursor = "0-0"
        while True:
            reply = await self._redis.xautoclaim(
                self._outbox.stream,
                RELAY_GROUP,
                self.consumer_name,
                min_idle_time=0,
                start_id=cursor,
                count=self._batch_size,
                # not justid: redis-py then drops the cursor from the reply
            )
            cursor = _decode(reply[0])
            if cursor == "0-0":
                return

    async def _read(self, *, pending: bool) -> list[tuple[str, dict[str, str]]]:
        reply = await self._redis.xreadgroup(
            RELAY_GROUP,
            self.consumer_name,
            {self._outbox.stream: "0" if pending else ">"},
            count=self._batch_size,
            block=None if pending else self._block_ms,
        )
        entries: list[tuple[str, dict[str, str]]] = []
        # RESP2 reply shape: [[stream, [(entry_id, fields), ...]]]
        stream_replies = cast(list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]], reply or [])
        for _stream, items in stream_replies:
            for entry_id, fields in items:
                # A pending entry deleted meanwhile (acked by a stale relay) comes back empty.
                if fields:
                    entries.append((_decode(entry_id), decode_fields(fields)))
                else:
                    await self._redis.xack(self._outbox.stream, RELAY_GROUP, entry_id)
        return entries

    async def _publish(self, entries: list[tuple[str, dict[str, str]]]) -> int:
        sendable = []
        for entry_id, fields in entries:
            problem = entry_problem(fields, self._outbox.topics)
            if problem is None:
                sendable.append((entry_id, fields))
            else:
                await self._quarantine(entry_id, fields, problem)
        return await self._send_in_order(sendable, self._acknowledge, self._quarantine)

    async def _quarantine(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        """Move one entry out of the outbox into the quarantine stream, in one transaction."""
        stream = self._outbox.stream
        moved = quarantine_fields(fields, reason, entry_id, dt.datetime.now(dt.UTC))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._outbox.quarantine, moved)  # type: ignore[arg-type]
            pipe.xack(stream, RELAY_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
        OUTBOX_QUARANTINED.labels(self._outbox.service, reason).inc()
        # The entry id only: the fields may hold personal data.
        log.warning(
            "outbox entry quarantined", service=self._outbox.service, entry=entry_id, reason=reason
        )

    async def _forget_recent(self, entry_id: str, _fields: dict[str, str], reason: str) -> None:
        # A copy in the re-send window was acknowledged once already; one that cannot be sent
        # (now) is only dropped from the window, never allowed to stop the relay.
        await self._redis.xdel(self._recent, entry_id)
        log.warning(
            "dropped an unsendable copy from the re-send window", entry=entry_id, reason=reason
        )

    async def _resend_recent(self) -> None:
        recent = cast(list[tuple[Any, dict[Any, Any]]], await self._redis.xrange(self._recent))
        entries = []
        for entry_id, fields in recent:
            entry = (_decode(entry_id), decode_fields(fields))
            problem = entry_problem(entry[1], self._outbox.topics)
            if problem is None:
                entries.append(entry)
            else:
                await self._forget_recent(*entry, problem)
        if entries:
            count = await self._send_in_order(entries, _nothing_to_acknowledge, self._forget_recent)
            log.info("re-sent recently acknowledged events", count=count)
        self._resend_due = False
        # The copies are as fresh as the broker's acknowledgement of them just now: a second
        # crash soon after can lose them again, so the window keeps them one window longer.
        self._resent_at = time.monotonic()

    async def _send_in_order(
        self,
        entries: list[tuple[str, dict[str, str]]],
        on_sent: Callable[[list[tuple[str, dict[str, str]]]], Awaitable[None]],
        on_refused: Callable[[str, dict[str, str], str], Awaitable[None]],
    ) -> int:
        # Events of one aggregate go out one after another (round by round); different
        # aggregates go out side by side, so a batch of distinct keys is one round trip.
        #
        # An event the broker refuses for good is set aside (``on_refused``) and the events of
        # its aggregate after it still go out. Holding them back instead would keep them
        # pending, and a relay reads nothing new while anything is pending: one refused record
        # would stop the whole service again. The set-aside event is not lost (an operator
        # releases it after the fix, and it arrives late); every consumer already has to take
        # an event of an aggregate after later ones (redeliveries, the re-send window), since
        # they dedupe by event id and each event carries its own time.
        by_key: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
        for entry in entries:
            by_key[entry[1]["key"]].append(entry)
        queues = list(by_key.values())
        published = 0
        failure: BaseException | None = None
        while queues:
            heads = [queue[0] for queue in queues]
            results = await asyncio.gather(
                *(self._send(fields) for _, fields in heads), return_exceptions=True
            )
            sent = [head for head, result in zip(heads, results, strict=True) if result is None]
            if sent:
                await on_sent(sent)
                published += len(sent)
            for (entry_id, fields), result in zip(heads, results, strict=True):
                if isinstance(result, BaseException) and refused_for_good(result):
                    await on_refused(entry_id, fields, refusal_reason(result))
            next_queues = []
            for queue, result in zip(queues, results, strict=True):
                if isinstance(result, BaseException) and not refused_for_good(result):
                    failure = result  # this aggregate stops here; later events wait their turn
                    continue
                if len(queue) > 1:
                    next_queues.append(queue[1:])
            queues = next_queues
        if failure is not None:
            RELAY_FAILURES.labels(self._outbox.service).inc()
            await self._recover_topics(failure)
            raise failure
        return published

    async def _send(self, fields: dict[str, str]) -> None:
        headers = [(k, v.encode()) for k, v in json.loads(fields["headers"])]
        metadata = await self._producer.send(
            fields["topic"], fields["key"], fields["value"].encode(), headers
        )
        # Offsets only grow. One that does not means the broker came back without records it
        # had acknowledged (and reuses their offsets): send the recent window again.
        partition = (metadata.topic, metadata.partition)
        previous = self._acked_offsets.get(partition)
        if previous is not None and metadata.offset <= previous and not self._resend_due:
            log.warning(
                "the broker lost acknowledged records; re-sending the recent window",
                partition=f"{metadata.topic}:{metadata.partition}",
                offset=metadata.offset,
                previous_offset=previous,
            )
            self._resend_due = True
        self._acked_offsets[partition] = metadata.offset
        self._last_ack = time.monotonic()

    async def _acknowledge(self, sent: list[tuple[str, dict[str, str]]]) -> None:
        entry_ids = [entry_id for entry_id, _ in sent]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._outbox.stream, RELAY_GROUP, *entry_ids)
            pipe.xdel(self._outbox.stream, *entry_ids)
            window = self._window_seconds
            if window > 0:
                for _, fields in sent:
                    pipe.xadd(self._recent, fields)  # type: ignore[arg-type]
                # The broker is up (it just acknowledged): keep the last ``window`` seconds -
                # unless a loss was just noticed (the window is about to be re-sent whole) or
                # was re-sent less than a window ago.
                settled = time.monotonic() - self._resent_at > window
                if settled and not self._resend_due:
                    pipe.xtrim(self._recent, minid=_ms_ago(window))
            await pipe.execute()
        for _, fields in sent:
            EVENTS_PUBLISHED.labels(self._outbox.service, fields["topic"], fields["type"]).inc()

    async def _recover_topics(self, failure: BaseException) -> None:
        # A broker that came back empty (a memory-only broker after a restart) has no topics;
        # auto-create is off, so create them again before the next attempt.
        if self._producer.started:
            try:
                await ensure_topics(self._settings)
            except Exception as exc:
                stop_if_cancelled()
                log.debug(
                    "topic check after publish failure failed", error=str(exc), cause=str(failure)
                )

    async def _update_gauges(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge < 1.0:
            return
        self._last_gauge = now
        # The window itself is trimmed as acknowledgements arrive (``_acknowledge``), never by
        # the clock alone: during a broker outage nothing is acknowledged, and the records the
        # broker lost just before it died must still be there when it comes back, however long
        # that takes. Only copies old enough that the consumers' dedupe marks may have expired
        # go by the clock, so a re-send can never be counted twice.
        await self._redis.xtrim(self._recent, minid=_ms_ago(self._settings.dedupe_ttl_seconds / 2))
        service = self._outbox.service
        OUTBOX_DEPTH.labels(service).set(await self._redis.xlen(self._outbox.stream))
        oldest = await self._redis.xrange(self._outbox.stream, count=1)
        age = 0.0
        if oldest:
            written_ms = int(_decode(oldest[0][0]).split("-")[0])
            age = max(0.0, time.time() - written_ms / 1000)
        OUTBOX_OLDEST_AGE.labels(service).set(age)
