"""A consumer killed after its handler stored the effect, before it committed the offset."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from services.contracts import EventType, Topic
from services.plumbing.metrics import EVENTS_CONSUMED
from tests.integration.plumbing.support import Wiring, drain_relay, eventually, make_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


async def test_killed_consumer_redelivers_and_the_effect_still_happens_once(
    wiring: Wiring,
) -> None:
    # The replica's stable name: its replacement takes the dead member's partitions over at
    # once (static membership) instead of after a session timeout that noida never enforces.
    wiring.settings = wiring.settings.model_copy(update={"instance_id": "replica-1"})
    events = [make_event("visit-crash", seq=i) for i in range(5)]
    await wiring.outbox.publish(*events)
    await drain_relay(wiring.relay, wiring.outbox)

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.plumbing.crashing_consumer",
        wiring.settings.model_dump_json(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 137, output.decode()
    assert await wiring.effects() == {str(e.id): 1 for e in events}  # stored, not committed

    duplicates = EVENTS_CONSUMED.labels(
        "probe",
        wiring.settings.topic(Topic.MOBILE),
        EventType.MOBILE_CONTACT_RECORDED,
        "duplicate",
    )
    before = duplicates._value.get()
    consumer = wiring.consumer(wiring.counting_handler(), session_timeout_ms=6000)
    task = asyncio.create_task(consumer.run())
    try:

        async def redelivered() -> bool:
            return duplicates._value.get() - before >= len(events)

        await eventually(redelivered, within=60)
    finally:
        task.cancel()
    assert await wiring.effects() == {str(e.id): 1 for e in events}
