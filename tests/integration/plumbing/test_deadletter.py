"""Events that cannot be decoded or handled go to the dead-letter topic; the rest carry on."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from services.contracts import CloudEvent, Topic, encode_event
from services.plumbing.consumer import Transaction, UnprocessableEvent
from tests.integration.plumbing.support import Wiring, eventually, make_event

pytestmark = pytest.mark.integration


async def read_deadletters(wiring: Wiring, expected: int) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(
        wiring.settings.topic(Topic.DEADLETTER),
        bootstrap_servers=wiring.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    letters: list[dict[str, str]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(letters) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    headers["value"] = (record.value or b"").decode()
                    letters.append(headers)
    finally:
        await consumer.stop()
    return letters


async def test_poison_events_are_deadlettered_with_reason_and_later_events_still_processed(
    wiring: Wiring,
) -> None:
    topic = wiring.settings.topic(Topic.MOBILE)
    refused = make_event("visit-poison", seq=2)
    before, after = make_event("visit-poison", seq=1), make_event("visit-poison", seq=3)
    await wiring.producer.publish(before)
    await wiring.producer.send(topic, "visit-poison", b"{not json")
    await wiring.producer.publish(refused)
    await wiring.producer.publish(after)

    counting = wiring.counting_handler()

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        if event.id == refused.id:
            raise UnprocessableEvent("unknown_visit", "no visit with this id is known")
        await counting(event, tx)

    task = asyncio.create_task(wiring.consumer(handle).run())
    try:

        async def later_event_handled() -> bool:
            return str(after.id) in await wiring.effects()

        await eventually(later_event_handled)
    finally:
        task.cancel()

    assert await wiring.effects() == {str(before.id): 1, str(after.id): 1}
    letters = await read_deadletters(wiring, expected=2)
    assert [letter["dlq_reason"] for letter in letters] == ["invalid_json", "unknown_visit"]
    assert letters[0]["value"] == "{not json"
    assert letters[1]["value"] == encode_event(refused).decode()
    for letter, offset in zip(letters, ("1", "2"), strict=True):
        assert letter["dlq_original_topic"] == topic
        assert letter["dlq_original_offset"] == offset
        assert letter["dlq_consumer_group"].startswith("kanalhub.probe")
        assert "dlq_original_partition" in letter


async def test_handler_that_keeps_failing_is_deadlettered_after_its_attempts(
    wiring: Wiring,
) -> None:
    failing, fine = make_event("visit-fail", seq=1), make_event("visit-fail", seq=2)
    await wiring.producer.publish(failing)
    await wiring.producer.publish(fine)
    attempts = 0
    counting = wiring.counting_handler()

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        nonlocal attempts
        if event.id == failing.id:
            attempts += 1
            raise ValueError("a bug in the handler")
        await counting(event, tx)

    task = asyncio.create_task(wiring.consumer(handle, max_attempts=3).run())
    try:

        async def fine_handled() -> bool:
            return str(fine.id) in await wiring.effects()

        await eventually(fine_handled)
    finally:
        task.cancel()
    assert attempts == 3
    letters = await read_deadletters(wiring, expected=1)
    assert letters[0]["dlq_reason"] == "handler_failed"
    assert "ValueError: a bug in the handler" in letters[0]["dlq_detail"]
