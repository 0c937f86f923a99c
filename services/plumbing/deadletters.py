"""The operator's side of the dead-letter topic: list, release and drop dead letters.

Every consumer sends an event it cannot decode, or whose handler failed ``max_attempts`` times,
to ``kanalhub.deadletter.v1`` with ``dlq_*`` headers (see :mod:`services.plumbing.consumer`)
and goes on. ``kanalhub deadletters ...`` reads that topic:

- ``list`` - the dead letters not yet handled, optionally of one consumer group or reason.
- ``release`` - re-publish the original record (key, value, its own headers, without the
  ``dlq_*`` ones) to its original topic, once the cause is fixed. Every consumer group of that
  topic gets it again; the groups that handled it the first time dedupe it by event id, so a
  release is safe to repeat. A record that could not be decoded is not released: it would only
  be dead-lettered again by every group (and one refused as personal data must not travel on).
- ``drop`` - give up on a dead letter; it stays on the topic (Kafka's retention removes it)
  but is hidden from ``list``.

Layout in Redis (keys under ``<prefix>:deadletters:``):

- ``handled`` - a Hash: field ``<dead-letter topic>:<partition>:<offset>``, value a JSON object
  ``{"action": "released" | "dropped", "at": <ISO time>}``. It grows by one field per handled
  dead letter; dead letters are rare (an alert fires on each burst).

``metrics redrive`` (:mod:`services.metrics.commands`) is the older, metrics-only bulk
re-publish with its own cursor; it is unaffected by these marks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from services.contracts import Topic
from services.contracts.envelope import DecodeFailure
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.logging import get_logger
from services.plumbing.producer import EventProducer
from services.plumbing.settings import HubSettings
from services.plumbing.topics import topic_partitions

log = get_logger(__name__)

Progress = Callable[[int, int], None]
"""Called with (records read, records in all) while ``list`` reads the topic."""

_REF = re.compile(r"^(?P<partition>[0-9]{1,6}):(?P<offset>[0-9]{1,19})$")
# Reasons that mean the record is not an event of the contract: releasing it changes nothing.
_UNDECODABLE = frozenset(get_args(DecodeFailure))


@dataclass(frozen=True)
class DeadLetterRecord:
    """One dead letter as an operator sees it."""

    ref: str
    """``<partition>:<offset>`` on the dead-letter topic: what ``release`` and ``drop`` take."""
    failed_at: str
    group: str
    reason: str
    detail: str
    origin: str
    """Where the record was when it failed: ``<topic>:<partition>:<offset>``."""


class NoSuchDeadLetter(LookupError):
    """No dead letter at this reference."""


class NotReleasable(ValueError):
    """This dead letter cannot be re-published (the message says why)."""


def handled_key(settings: HubSettings) -> str:
    """The hash of dead letters released or dropped (see the module's key map)."""
    return settings.key("deadletters", "handled")


def _no_progress(_done: int, _total: int) -> None:
    return None


async def list_deadletters(
    settings: HubSettings,
    redis: Redis,
    *,
    group: str | None = None,
    reason: str | None = None,
    progress: Progress = _no_progress,
) -> list[DeadLetterRecord]:
    """Every dead letter not yet released or dropped (of ``group``, with ``reason``), oldest
    first per partition; reads the topic up to where it ended when the command started."""
    topic = settings.topic(Topic.DEADLETTER)
    handled = {
        field.decode() if isinstance(field, bytes) else str(field)
        for field in await redis.hkeys(handled_key(settings))
    }
    letters: list[DeadLetterRecord] = []
    async with _Reader(settings) as reader:
        partitions = await topic_partitions(settings, [topic])
        timeout = settings.kafka_timeout_seconds
        ends = await asyncio.wait_for(reader.end_offsets(partitions), timeout)
        starts = await asyncio.wait_for(reader.beginning_offsets(partitions), timeout)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        done = 0
        reader.assign(partitions)
        for tp in partitions:
            if ends[tp] <= starts[tp]:
                continue
            reader.seek(tp, starts[tp])
            while await reader.position(tp) < ends[tp]:
                batch = await reader.getmany(tp, timeout_ms=1000, max_records=500)
                for record in batch.get(tp, []):
                    if record.offset >= ends[tp]:
                        break
                    done += 1
                    letter = _letter(record)
                    if f"{topic}:{letter.ref}" in handled:
                        continue
                    if group is not None and letter.group != group:
                        continue
                    if reason is not None and letter.reason != reason:
                        continue
                    letters.append(letter)
                progress(done, total)
    return letters


async def release(
    settings: HubSettings, redis: Redis, producer: EventProducer, ref: str
) -> DeadLetterRecord:
    """Re-publish the dead letter at ``ref`` to its original topic and mark it released.

    Raises :class:`NoSuchDeadLetter`, or :class:`NotReleasable` for a record that is not an
    event (undecodable) or carries no original topic.
    """
    record = await _fetch(settings, ref)
    letter = _letter(record)
    headers = _headers(record)
    original_topic = headers.get("dlq_original_topic", "")
    if "dlq_value_omitted" in headers:
        # The record was too large to be dead-lettered whole; it is still at its origin.
        raise NotReleasable(
            f"dead letter {ref} does not hold the record ({headers['dlq_value_omitted']}); "
            f"it is at {letter.origin} until the topic's retention removes it"
        )
    if letter.reason in _UNDECODABLE:
        raise NotReleasable(
            f"dead letter {ref} could not be decoded as an event ({letter.reason}): releasing it "
            "would only dead-letter it again; drop it"
        )
    if not original_topic:
        raise NotReleasable(f"dead letter {ref} does not say which topic it came from")
    await producer.send(
        original_topic,
        record.key,
        record.value or b"",
        [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")],
    )
    await _mark(settings, redis, ref, "released")
    log.info("dead letter released", dead_letter=ref, topic=original_topic, group=letter.group)
    return letter


async def drop(settings: HubSettings, redis: Redis, ref: str) -> DeadLetterRecord:
    """Mark the dead letter at ``ref`` dropped (hidden from ``list``); raises
    :class:`NoSuchDeadLetter` when there is none, so a mistyped reference is not "dropped"."""
    letter = _letter(await _fetch(settings, ref))
    await _mark(settings, redis, ref, "dropped")
    log.warning("dead letter dropped", dead_letter=ref, reason=letter.reason, group=letter.group)
    return letter


async def _mark(settings: HubSettings, redis: Redis, ref: str, action: str) -> None:
    field = f"{settings.topic(Topic.DEADLETTER)}:{ref}"
    value = json.dumps({"action": action, "at": dt.datetime.now(dt.UTC).isoformat()})
    await redis.hset(handled_key(settings), field, value)


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in record.headers or ()}


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetterRecord:
    headers = _headers(record)
    origin = ":".join(
        headers.get(f"dlq_original_{part}", "?") for part in ("topic", "partition", "offset")
    )
    return DeadLetterRecord(
        ref=f"{record.partition}:{record.offset}",
        failed_at=headers.get("dlq_failed_at", ""),
        group=headers.get("dlq_consumer_group", ""),
        reason=headers.get("dlq_reason", ""),
        detail=headers.get("dlq_detail", ""),
        origin=origin,
    )


async def _fetch(settings: HubSettings, ref: str) -> ConsumerRecord[bytes, bytes]:
    """The record at ``ref`` on the dead-letter topic."""
    match = _REF.match(ref)
    if match is None:
        raise NoSuchDeadLetter(f"{ref!r} is not a dead letter reference (<partition>:<offset>)")
    topic = settings.topic(Topic.DEADLETTER)
    tp = TopicPartition(topic, int(match["partition"]))
    offset = int(match["offset"])
    async with _Reader(settings) as reader:
        if tp not in await topic_partitions(settings, [topic]):
            raise NoSuchDeadLetter(f"no dead letter at {ref}")
        timeout = settings.kafka_timeout_seconds
        start = (await asyncio.wait_for(reader.beginning_offsets([tp]), timeout))[tp]
        end = (await asyncio.wait_for(reader.end_offsets([tp]), timeout))[tp]
        if not start <= offset < end:
            raise NoSuchDeadLetter(f"no dead letter at {ref}")
        reader.assign([tp])
        reader.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + timeout * 3
        while asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(tp, timeout_ms=1000, max_records=1)
            for record in batch.get(tp, []):
                if record.offset == offset:
                    return record
                raise NoSuchDeadLetter(f"no dead letter at {ref}")
        raise TimeoutError(f"the broker did not deliver dead letter {ref} in time")


class _Reader:
    """A group-less consumer of the dead-letter topic, started with a timeout, always stopped."""

    def __init__(self, settings: HubSettings) -> None:
        timeout = settings.kafka_timeout_seconds
        self._timeout = timeout
        self._consumer = AIOKafkaConsumer(
            **kafka_client_options(settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="kanalhub-deadletters",
            request_timeout_ms=int(timeout * 1000) + 30_000,
        )

    async def __aenter__(self) -> AIOKafkaConsumer:
        try:
            await asyncio.wait_for(self._consumer.start(), self._timeout)
        except BaseException:
            await self._consumer.stop()
            raise
        return self._consumer

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.wait_for(self._consumer.stop(), self._timeout)
