"""The metrics service's copy of registry entries, kept from the registry's events through the
consumer: a re-delivered older version never undoes a newer state or a retirement."""

from __future__ import annotations

from typing import Any

import pytest

from services.contracts import EntryRetired, EntryStatus, EntryUpserted, EventType, new_event
from services.metrics.store import MetricsStore
from tests.integration.metrics.builders import payload
from tests.integration.metrics.conftest import Metrics

pytestmark = pytest.mark.integration

REGISTRY = "/kanalhub/registry"


def _upserted(version: int, **changes: Any) -> EntryUpserted:
    data = payload(
        EventType.REGISTRY_ENTRY_UPSERTED, entry_id="bsc-valby", version=version, **changes
    )
    assert isinstance(data, EntryUpserted)
    return data


async def test_an_older_entry_version_after_a_newer_one_leaves_the_newer(
    metrics: Metrics,
) -> None:
    events = [
        new_event(EventType.REGISTRY_ENTRY_UPSERTED, data, source=REGISTRY)
        for data in (
            _upserted(1, name="Borgerservice Valby"),
            _upserted(3, name="Borgerservice Valby Medborgerhus"),
            _upserted(2, name="Borgerservice Valby (re-driven)"),
        )
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(len(events))
    entry = await MetricsStore(metrics.settings).entry(metrics.runtime.redis, "bsc-valby")
    assert entry is not None
    assert entry.name == "Borgerservice Valby Medborgerhus"


async def test_a_retired_entry_stays_retired_when_an_older_upsert_comes_again(
    metrics: Metrics,
) -> None:
    events = [
        new_event(EventType.REGISTRY_ENTRY_UPSERTED, _upserted(1, name="Centre"), source=REGISTRY),
        new_event(
            EventType.REGISTRY_ENTRY_RETIRED,
            EntryRetired(entry_id="bsc-valby", version=2),
            source=REGISTRY,
        ),
        new_event(EventType.REGISTRY_ENTRY_UPSERTED, _upserted(1, name="Centre"), source=REGISTRY),
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(len(events))
    entry = await MetricsStore(metrics.settings).entry(metrics.runtime.redis, "bsc-valby")
    assert entry is not None
    assert (entry.retired, entry.status, entry.name) == (True, EntryStatus.CLOSED, "Centre")
