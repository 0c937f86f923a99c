"""``kanalhub registry replay``: the current state of everything, published again."""

from __future__ import annotations

import pytest

from services.contracts import EventType
from services.registry.commands import replay
from services.registry.settings import RegistrySettings
from tests.integration.registry.conftest import Registry, create_basics
from tests.support.apps import outbox_drained

pytestmark = pytest.mark.integration


async def test_replay_republishes_the_current_state_of_every_record(registry: Registry) -> None:
    await create_basics(registry)
    await registry.client.delete(
        "/entries/entry-test", headers={**registry.writer, "If-Match": '"1"'}
    )
    await outbox_drained(registry.app)
    staged = await replay(RegistrySettings(hub=registry.settings))
    assert staged == 3
    events = await registry.events(expect=7)
    replayed = events[4:]
    assert [(e.type, e.subject) for e in replayed] == [
        (EventType.REGISTRY_SERVICE_UPSERTED, "passport"),
        (EventType.REGISTRY_SITE_UPSERTED, "site-test"),
        (EventType.REGISTRY_ENTRY_RETIRED, "entry-test"),
    ]
    assert replayed[2].data.model_dump() == {"entry_id": "entry-test", "version": 2}
