"""Outbox entries the relay cannot send, set aside so that the rest of the outbox still flows.

Before this, one malformed entry in a service's outbox stream (a missing field, headers that are
not JSON - written straight into Valkey by a bug or by hand) made every relay round raise at it:
the entry stayed pending, and while anything is pending the relay reads nothing new, so no event
of that service was ever published again. A record the broker refuses for good (too large, an
invalid topic name) did the same.

Now the relay checks each entry before sending it (:func:`entry_problem`) and moves one that is
malformed, or that the broker refused for good (:func:`refused_for_good`), to the outbox's
quarantine stream (keys: see :mod:`services.plumbing.outbox`), counted in
``kanalhub_outbox_quarantined_total{service,reason}`` and logged once; it goes on with the
others in the same round. Operators list, release (after a fix) or drop quarantined entries
with ``kanalhub outbox quarantine ...`` (the functions below).

What is never quarantined: a send that failed because the broker is unreachable, slow or busy
(timeouts, connection errors, leader elections, any error aiokafka marks ``retriable``). Those
are retried for ever, as before: nothing accepted may be lost while Kafka is down. aiokafka
marks some outage errors (``KafkaTimeoutError``, ``BrokerNotAvailableError``,
``ProducerClosed``) and configuration errors (authorization) as not retriable, so "not
retriable" alone is not the test: only the errors that name the record itself count.

The consumer uses the same test when the dead letter itself is refused (a record just under the
size limit, plus the ``dlq_*`` headers): it dead-letters it without the value instead of
retrying for ever.

A reason is a short code (``missing_field:key``, ``headers_not_json``,
``refused:MessageSizeTooLargeError``): a bounded metric label, and it never holds a value of
the entry, which may be personal data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from services.contracts import EventType
from services.plumbing.logging import get_logger

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.plumbing.outbox import Outbox

log = get_logger(__name__)

REQUIRED_FIELDS = ("id", "type", "topic", "key", "value", "headers")
"""The fields of :meth:`Outbox.entry` the relay reads."""

REASON_FIELD = "quarantine_reason"
AT_FIELD = "quarantine_at"
ENTRY_ID_FIELD = "quarantine_entry_id"
QUARANTINE_FIELDS = (REASON_FIELD, AT_FIELD, ENTRY_ID_FIELD)
"""Added to the original fields in the quarantine stream; removed again on release."""

# Errors that say the record itself cannot be written, whenever it is tried.
_REFUSED_FOR_GOOD: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
)


def entry_problem(fields: Mapping[str, str], topics: Collection[str]) -> str | None:
    """What is wrong with an outbox entry (a reason code), or None when the relay can send it.

    ``fields`` are decoded with ``surrogateescape`` (bytes that are not UTF-8 show up as lone
    surrogates); ``topics`` are the hub's topic names: any other topic would wait for metadata
    until it times out, i.e. be retried for ever.
    """
    for name in REQUIRED_FIELDS:
        if name not in fields:
            return f"missing_field:{name}"
        if not _is_utf8(fields[name]):
            return f"not_utf8:{name}"
    if not all(_is_utf8(name) and _is_utf8(value) for name, value in fields.items()):
        return "not_utf8"  # another field: its name is not ours to put in a label
    if fields["topic"] not in topics:
        return "unknown_topic"
    try:
        headers = json.loads(fields["headers"])
    except ValueError:
        return "headers_not_json"
    if not isinstance(headers, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in headers
    ):
        return "headers_not_pairs"
    return None


def refused_for_good(error: BaseException) -> bool:
    """Whether a failed send says the record can never be written (not that Kafka is unwell)."""
    return isinstance(error, _REFUSED_FOR_GOOD) and not error.retriable


def refusal_reason(error: BaseException) -> str:
    """The reason code of a send the broker (or the client) refused for good."""
    return f"refused:{type(error).__name__}"


def quarantine_fields(
    fields: Mapping[str, str], reason: str, entry_id: str, at: dt.datetime
) -> dict[bytes, bytes]:
    """The quarantine stream's fields for one entry: its own, byte for byte, then ours."""
    moved = {_raw(k): _raw(v) for k, v in fields.items() if k not in QUARANTINE_FIELDS}
    moved[REASON_FIELD.encode()] = reason.encode()
    moved[AT_FIELD.encode()] = at.isoformat().encode()
    moved[ENTRY_ID_FIELD.encode()] = entry_id.encode()
    return moved


def decode_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    """Stream fields as text; bytes that are not UTF-8 survive (``surrogateescape``)."""
    return {_text(k): _text(v) for k, v in fields.items()}


def _text(value: Any) -> str:
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else str(value)


def _raw(value: str) -> bytes:
    return value.encode(errors="surrogateescape")


def _is_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- what the operator commands do ------------------------------------------------------------


@dataclass(frozen=True)
class QuarantinedEntry:
    """One quarantined outbox entry as an operator sees it (no payload values)."""

    id: str
    """The quarantine stream's entry id: what ``release`` and ``drop`` take."""
    at: str
    reason: str
    entry_id: str
    """The entry's id in the outbox stream when it was set aside."""
    type: str
    """The event type, if it is one of the contract's (else ``?``)."""


class NotQuarantined(LookupError):
    """No quarantined entry has this id."""


class StillMalformed(ValueError):
    """A released entry would be quarantined again at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_EVENT_TYPES = {str(t) for t in EventType}
_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


async def quarantined(outbox: Outbox) -> list[QuarantinedEntry]:
    """Every quarantined entry of ``outbox``, oldest first."""
    reply = cast(list[tuple[Any, dict[Any, Any]]], await _redis(outbox).xrange(outbox.quarantine))
    entries = []
    for qid, raw in reply:
        fields = decode_fields(raw)
        kind = fields.get("type", "")
        entries.append(
            QuarantinedEntry(
                id=_text(qid),
                at=fields.get(AT_FIELD, ""),
                reason=fields.get(REASON_FIELD, ""),
                entry_id=fields.get(ENTRY_ID_FIELD, ""),
                type=kind if kind in _EVENT_TYPES else "?",
            )
        )
    return entries


async def release(
    outbox: Outbox,
    topics: Collection[str],
    qid: str,
    changes: Mapping[str, str] | None = None,
) -> str:
    """Put a quarantined entry back into the outbox as a new entry (with ``changes`` applied to
    its fields), so the relay sends it again; returns its new outbox entry id.

    Raises :class:`NotQuarantined`, or :class:`StillMalformed` when the entry would not pass the
    relay's check (then nothing changes).
    """
    redis = _redis(outbox)
    if not _STREAM_ID.match(qid):
        raise NotQuarantined(qid)
    found = cast(list[tuple[Any, dict[Any, Any]]], await redis.xrange(outbox.quarantine, qid, qid))
    if not found:
        raise NotQuarantined(qid)
    fields = {k: v for k, v in decode_fields(found[0][1]).items() if k not in QUARANTINE_FIELDS}
    fields.update(changes or {})
    problem = entry_problem(fields, topics)
    if problem is not None:
        raise StillMalformed(problem)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(outbox.stream, {_raw(k): _raw(v) for k, v in fields.items()})
        pipe.xdel(outbox.quarantine, qid)
        new_id, _ = await pipe.execute()
    log.info(
        "quarantined outbox entry released", service=outbox.service, entry=qid, new=_text(new_id)
    )
    return _text(new_id)


async def drop(outbox: Outbox, qid: str) -> None:
    """Delete a quarantined entry for good; raises :class:`NotQuarantined` if there is none."""
    if not _STREAM_ID.match(qid) or not await _redis(outbox).xdel(outbox.quarantine, qid):
        raise NotQuarantined(qid)
    log.warning("quarantined outbox entry dropped", service=outbox.service, entry=qid)


def _redis(outbox: Outbox) -> Redis:
    return outbox.redis
