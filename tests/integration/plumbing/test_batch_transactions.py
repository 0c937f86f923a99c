"""The opt-in batch mode of the consumer loop: one transaction per fetched batch."""

from __future__ import annotations

import asyncio

import pytest

from services.contracts import CloudEvent, Topic
from services.plumbing.consumer import Transaction, UnprocessableEvent
from tests.integration.plumbing.support import Wiring, eventually, make_event

pytestmark = pytest.mark.integration


async def test_batch_mode_applies_each_event_once_even_when_delivered_twice(
    wiring: Wiring,
) -> None:
    events = [make_event(f"visit-{i % 5}", seq=i) for i in range(300)]
    for event in events:
        await wiring.producer.publish(event)
    for event in events[:100]:  # redelivered copies, partly inside the same fetched batch
        await wiring.producer.publish(event)
    task = asyncio.create_task(
        wiring.consumer(wiring.counting_handler(), transaction_per_batch=True).run()
    )
    try:

        async def all_seen() -> bool:
            return len(await wiring.effects()) == len(events)

        await eventually(all_seen)
        await asyncio.sleep(1.0)
    finally:
        task.cancel()
    assert await wiring.effects() == {str(e.id): 1 for e in events}


async def test_batch_mode_falls_back_per_event_when_one_event_fails(wiring: Wiring) -> None:
    events = [make_event("visit-mixed", seq=i) for i in range(20)]
    refused = events[7]
    for event in events:
        await wiring.producer.publish(event)
    await wiring.producer.send(wiring.settings.topic(Topic.MOBILE), "visit-mixed", b"not json")
    counting = wiring.counting_handler()

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        if event.id == refused.id:
            raise UnprocessableEvent("unknown_visit")
        await counting(event, tx)

    task = asyncio.create_task(wiring.consumer(handle, transaction_per_batch=True).run())
    try:

        async def others_seen() -> bool:
            return len(await wiring.effects()) == len(events) - 1

        await eventually(others_seen)
        await asyncio.sleep(0.5)
    finally:
        task.cancel()
    assert await wiring.effects() == {str(e.id): 1 for e in events if e.id != refused.id}
