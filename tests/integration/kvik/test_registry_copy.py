"""The kvik service's copy of registry entries and services, from registry events."""

from __future__ import annotations

import asyncio

import pytest

from services.contracts import EventType, new_event
from services.contracts.payloads.registry import EntryRetired
from services.plumbing.producer import EventProducer
from tests.integration.kvik.conftest import Kvik, entry_event, service_event

pytestmark = pytest.mark.integration


async def test_registry_events_on_the_broker_reach_the_copy(kvik: Kvik) -> None:
    producer = EventProducer(kvik.hub, client_id="test-registry")
    await producer.start()
    try:
        await producer.publish(entry_event("kvik-broker", district="valby"))
        await producer.publish(service_event("tax"))
    finally:
        await producer.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (await kvik.service.store.entry("kvik-broker")) is None or "tax" not in (
        await kvik.service.store.catalogue()
    ):
        assert loop.time() < deadline, "the consumer did not copy the registry events"
        await asyncio.sleep(0.1)
    copy = await kvik.service.store.entry("kvik-broker")
    assert copy is not None
    assert (copy.district, copy.status, copy.kind) == ("valby", "open", "kvik_point")
    assert copy.hours is not None
    assert len(copy.hours.weekly) == 7


async def test_an_older_entry_version_never_overwrites_a_newer_one(kvik: Kvik) -> None:
    await kvik.apply(entry_event("kvik-versions", version=3, district="valby"))
    await kvik.apply(entry_event("kvik-versions", version=2, district="osterbro"))
    copy = await kvik.service.store.entry("kvik-versions")
    assert copy is not None
    assert (copy.version, copy.district) == (3, "valby")


async def test_a_retired_entry_takes_no_new_kiosks(kvik: Kvik) -> None:
    await kvik.apply(
        new_event(
            EventType.REGISTRY_ENTRY_RETIRED,
            EntryRetired(entry_id="kvik-test", version=2),
            source="/kanalhub/registry",
        )
    )
    response = await kvik.client.post("/kiosks", json={"entry_id": "kvik-test"}, headers=kvik.admin)
    assert response.status_code == 422
