"""No record can block a shared loop, for the outbox relays (issue 19, item 1): a malformed entry
written straight into Valkey, or a record the broker refuses for good, is quarantined with its
reason and counted while every other event is still published; an outage quarantines nothing;
operators list, release and drop quarantined entries (``kanalhub outbox quarantine``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka.errors import InvalidTopicError, KafkaTimeoutError
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY
from typer.testing import CliRunner, Result

from services.contracts import CloudEvent
from services.hub.cli import app as cli
from services.hub.embedded import NoidaBroker, TansuBroker
from services.plumbing.outbox import Outbox, OutboxRelay
from services.plumbing.outbox_quarantine import (
    NotQuarantined,
    StillMalformed,
    decode_fields,
    drop,
    quarantined,
    release,
)
from services.plumbing.producer import EventProducer
from tests.integration.plumbing.support import (
    SERVICE,
    Wiring,
    drain_relay,
    make_event,
)

pytestmark = pytest.mark.integration

SECRET = "0102031234"  # stands for a payload value that must never be echoed


def counted(reason: str, service: str = SERVICE) -> float:
    value = REGISTRY.get_sample_value(
        "kanalhub_outbox_quarantined_total", {"service": service, "reason": reason}
    )
    return value or 0.0


def counted_in_all(service: str = SERVICE) -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "kanalhub_outbox_quarantined"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("service") == service
    )


def fields_of(outbox: Outbox, event: CloudEvent) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in outbox.entry(event).items()}


async def quarantine_stream(outbox: Outbox) -> list[dict[str, str]]:
    reply = cast(list[tuple[Any, dict[Any, Any]]], await outbox.redis.xrange(outbox.quarantine))
    return [decode_fields(fields) for _, fields in reply]


async def test_malformed_entries_are_quarantined_and_the_events_around_them_are_published(
    wiring: Wiring,
) -> None:
    first, last = make_event("visit-1", seq=1), make_event("visit-2", seq=2)
    no_key = fields_of(wiring.outbox, make_event("visit-3", seq=3))
    del no_key["key"]
    bad_headers = fields_of(wiring.outbox, make_event("visit-4", seq=4))
    bad_headers["headers"] = f"{{{SECRET}"
    before = counted("missing_field:key"), counted("headers_not_json")

    await wiring.outbox.publish(first)
    # Written straight into Valkey, as a bug or an operator could: not through Outbox.stage.
    no_key_id = await wiring.redis.xadd(wiring.outbox.stream, no_key)  # type: ignore[arg-type]
    await wiring.redis.xadd(wiring.outbox.stream, bad_headers)  # type: ignore[arg-type]
    await wiring.outbox.publish(last)
    await drain_relay(wiring.relay, wiring.outbox)

    await wiring.consume_until(2, linger=0.5)
    assert await wiring.effects() == {str(first.id): 1, str(last.id): 1}
    held = await quarantine_stream(wiring.outbox)
    assert [entry["quarantine_reason"] for entry in held] == [
        "missing_field:key",
        "headers_not_json",
    ]
    # The original fields are kept for the operator, with where the entry was.
    assert {k: v for k, v in held[0].items() if not k.startswith("quarantine_")} == no_key
    assert held[0]["quarantine_entry_id"] == decode_fields({"id": no_key_id})["id"]
    assert (counted("missing_field:key"), counted("headers_not_json")) == (
        before[0] + 1,
        before[1] + 1,
    )
    listed = await quarantined(wiring.outbox)
    assert SECRET not in repr(listed)
    assert [entry.type for entry in listed] == [first.type, first.type]
    # Nothing is left for the next round to trip over.
    assert await wiring.relay.step() == 0


async def test_a_record_the_broker_refuses_for_good_is_quarantined_and_its_aggregate_goes_on(
    wiring: Wiring,
) -> None:
    huge = fields_of(wiring.outbox, make_event("visit-big", seq=1))
    huge["value"] = "x" * 1_200_000  # above the producer's max_request_size (1 MiB)
    after = make_event("visit-big", seq=2)
    before = counted("refused:MessageSizeTooLargeError")

    await wiring.redis.xadd(wiring.outbox.stream, huge)  # type: ignore[arg-type]
    await wiring.outbox.publish(after)
    await drain_relay(wiring.relay, wiring.outbox)

    # The later event of the same aggregate was not held back by the refused one.
    await wiring.consume_until(1, linger=0.5)
    assert await wiring.effects() == {str(after.id): 1}
    held = await quarantine_stream(wiring.outbox)
    assert [entry["quarantine_reason"] for entry in held] == ["refused:MessageSizeTooLargeError"]
    assert len(held[0]["value"]) == 1_200_000
    assert counted("refused:MessageSizeTooLargeError") == before + 1


class FakeRefusingProducer:
    """A fake producer: answers the records of some keys with a given error, and sends the rest
    with the real producer (so they really reach the broker)."""

    def __init__(self, real: EventProducer, errors: dict[str, Exception]) -> None:
        self.real = real
        self.errors = errors

    @property
    def started(self) -> bool:
        return self.real.started

    async def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
    ) -> RecordMetadata:
        if isinstance(key, str) and key in self.errors:
            raise self.errors[key]
        return await self.real.send(topic, key, value, headers)

    async def log_ends(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return await self.real.log_ends(partitions)


async def test_a_refusal_is_quarantined_but_a_timeout_is_retried_until_the_broker_takes_it(
    wiring: Wiring,
) -> None:
    refused, slow, fine = (
        make_event("visit-refused", seq=1),
        make_event("visit-slow", seq=2),
        make_event("visit-fine", seq=3),
    )
    # aiokafka marks KafkaTimeoutError "not retriable"; it is an outage all the same.
    producer = FakeRefusingProducer(
        wiring.producer,
        {"visit-refused": InvalidTopicError(), "visit-slow": KafkaTimeoutError()},
    )
    relay = OutboxRelay(
        wiring.redis,
        producer,  # type: ignore[arg-type]
        wiring.outbox,
        wiring.settings,
        lease_ms=1000,
    )
    await wiring.outbox.publish(refused, slow, fine)

    with pytest.raises(KafkaTimeoutError):
        await relay.step()  # the round still sent and set aside what it could
    held = await quarantine_stream(wiring.outbox)
    assert [(e["id"], e["quarantine_reason"]) for e in held] == [
        (str(refused.id), "refused:InvalidTopicError")
    ]
    assert await wiring.outbox.depth() == 1  # the slow one waits, kept

    del producer.errors["visit-slow"]  # the broker answers again
    await drain_relay(relay, wiring.outbox)
    await wiring.consume_until(2, linger=0.5)
    assert await wiring.effects() == {str(slow.id): 1, str(fine.id): 1}
    assert len(await quarantine_stream(wiring.outbox)) == 1


@pytest.mark.slow
async def test_an_unreachable_broker_quarantines_nothing_and_loses_nothing(
    private_broker: NoidaBroker | TansuBroker, private_wiring: Wiring
) -> None:
    if private_broker.kind == "tansu":
        pytest.skip("Tansu restarts empty (see test_outages); this is about the relay's choice")
    wiring = private_wiring
    events = [make_event(f"visit-{i % 3}", seq=i) for i in range(12)]
    before = counted_in_all()
    private_broker.stop()
    relay_task = asyncio.create_task(wiring.relay.run())
    try:
        await wiring.outbox.publish(*events)
        await asyncio.sleep(4)  # over a send timeout (3 s): the relay fails meanwhile
        assert await wiring.outbox.depth() == len(events)
        assert await quarantine_stream(wiring.outbox) == []

        private_broker.start()
        await wiring.consume_until(len(events), within=90, linger=0.5)
    finally:
        wiring.relay.stopping.set()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
    assert await wiring.effects() == {str(e.id): 1 for e in events}
    assert await quarantine_stream(wiring.outbox) == []
    assert counted_in_all() == before


async def test_a_released_entry_is_published_once_it_passes_and_a_dropped_one_is_gone(
    wiring: Wiring,
) -> None:
    event, other = make_event("visit-mend", seq=1), make_event("visit-gone", seq=2)
    no_key = fields_of(wiring.outbox, event)
    del no_key["key"]
    await wiring.redis.xadd(wiring.outbox.stream, no_key)  # type: ignore[arg-type]
    await wiring.redis.xadd(wiring.outbox.stream, fields_of(wiring.outbox, other) | {"topic": "x"})  # type: ignore[arg-type]
    await drain_relay(wiring.relay, wiring.outbox)
    mend, gone = await quarantined(wiring.outbox)
    assert (mend.reason, gone.reason) == ("missing_field:key", "unknown_topic")

    # Released as it is, it would be quarantined again: refused, nothing changes.
    with pytest.raises(StillMalformed) as refused:
        await release(wiring.outbox, wiring.outbox.topics, mend.id)
    assert refused.value.reason == "missing_field:key"
    assert len(await quarantined(wiring.outbox)) == 2
    assert await wiring.outbox.depth() == 0

    await release(wiring.outbox, wiring.outbox.topics, mend.id, {"key": event.subject})
    assert [e.id for e in await quarantined(wiring.outbox)] == [gone.id]
    await drain_relay(wiring.relay, wiring.outbox)
    await wiring.consume_until(1, linger=0.5)
    assert await wiring.effects() == {str(event.id): 1}

    await drop(wiring.outbox, gone.id)
    assert await quarantined(wiring.outbox) == []
    with pytest.raises(NotQuarantined):
        await drop(wiring.outbox, gone.id)
    with pytest.raises(NotQuarantined):
        await release(wiring.outbox, wiring.outbox.topics, "not-an-id")


async def test_the_outbox_quarantine_commands_list_release_and_drop(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kvik service's outbox, under this test's key prefix and topics.
    outbox = Outbox(wiring.redis, wiring.settings, "kvik")
    relay = OutboxRelay(wiring.redis, wiring.producer, outbox, wiring.settings, lease_ms=1000)
    event, other = make_event("visit-cli", seq=1), make_event("visit-cli-2", seq=2)
    no_key = fields_of(outbox, event)
    del no_key["key"]
    await wiring.redis.xadd(outbox.stream, no_key)  # type: ignore[arg-type]
    await wiring.redis.xadd(outbox.stream, fields_of(outbox, other) | {"headers": "[1]"})  # type: ignore[arg-type]
    await drain_relay(relay, outbox)
    mend, gone = await quarantined(outbox)
    monkeypatch.setenv("KANALHUB_REDIS_URL", wiring.settings.redis_url)
    monkeypatch.setenv("KANALHUB_KEY_PREFIX", wiring.settings.key_prefix)
    monkeypatch.setenv("KANALHUB_TOPIC_SUFFIX", wiring.settings.topic_suffix)
    runner = CliRunner()

    async def run(*args: str) -> Result:
        # The command runs its own event loop, as from a shell: in a thread of its own here.
        return await asyncio.to_thread(
            runner.invoke, cli, ["outbox", "quarantine", *args], env={"COLUMNS": "200"}
        )

    listed = await run("list", "--service", "kvik")
    assert listed.exit_code == 0, listed.output
    assert mend.id in listed.output
    assert gone.id in listed.output
    assert "missing_field:key" in listed.output
    assert "headers_not_pairs" in listed.output
    assert event.data.model_dump()["contact_id"] not in listed.output  # no payload value

    refused = await run("release", "--service", "kvik", mend.id)
    assert refused.exit_code == 1
    assert "missing_field:key" in refused.output
    released = await run("release", "--service", "kvik", mend.id, "--set", f"key={event.subject}")
    assert released.exit_code == 0, released.output
    await drain_relay(relay, outbox)
    await wiring.consume_until(1, linger=0.5)
    assert await wiring.effects() == {str(event.id): 1}

    dropped = await run("drop", "--service", "kvik", gone.id)
    assert dropped.exit_code == 0, dropped.output
    assert await quarantined(outbox) == []
    again = await run("drop", "--service", "kvik", gone.id)
    assert again.exit_code == 1
    assert f"no quarantined entry {gone.id}" in again.output
    empty = await run("list", "--service", "kvik")
    assert "empty" in empty.output
