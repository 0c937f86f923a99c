"""The consumer loop survives a committed offset that is out of range."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.plumbing.support import Wiring, make_event

pytestmark = pytest.mark.integration


async def test_committed_offset_beyond_the_end_resets_to_earliest(wiring: Wiring) -> None:
    events = [make_event("visit-range", seq=i) for i in range(5)]
    for event in events:
        metadata = await wiring.producer.publish(event)
    group = f"kanalhub.probe{wiring.settings.topic_suffix}"
    tp = TopicPartition(metadata.topic, metadata.partition)
    committer = AIOKafkaConsumer(
        bootstrap_servers=wiring.settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
    )
    await committer.start()
    try:
        committer.assign([tp])
        await committer.commit({tp: 10_000})  # as if the broker came back with less data
    finally:
        await committer.stop()

    await wiring.consume_until(len(events), within=45)
    assert set((await wiring.effects()).values()) == {1}
