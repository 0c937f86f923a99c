"""What the kvik service reacts to, in one table: event type -> handler.

The kvik service keeps its own copy of the registry's entries (which KVIK point a kiosk stands
at, its district, status and opening hours) and of the service catalogue (which service codes a
session may name), learnt from registry events alone. Sites carry nothing kvik needs: a KVIK
point names its own district, so site events are not consumed.
"""

from __future__ import annotations

from services.contracts import (
    CloudEvent,
    EntryRetired,
    EntryUpserted,
    EventType,
    ServiceRetired,
    ServiceUpserted,
)
from services.kvik.store import KvikStore
from services.plumbing.consumer import Handler, Transaction
from services.plumbing.settings import HubSettings


def handlers(settings: HubSettings) -> dict[EventType, Handler]:
    """The handler table, writing through a store on the hub ``settings`` (its key prefix).

    Each handler queues one version-checked script on the consumer's transaction, so an older
    upsert that arrives late (a replay, a redelivery) never overwrites a newer state.
    """

    stores: dict[int, KvikStore] = {}

    def store_for(tx: Transaction) -> KvikStore:
        # The consumer's client and outbox; the store only names keys and queues scripts here.
        # One store per client, so the scripts are hashed once, not per event.
        store = stores.get(id(tx.redis))
        if store is None:
            store = stores[id(tx.redis)] = KvikStore(tx.redis, settings, tx.outbox)
        return store

    async def entry_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryUpserted)
        await store_for(tx).apply_entry(tx.pipe, event.data)

    async def entry_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryRetired)
        await store_for(tx).retire_entry(tx.pipe, event.data.entry_id, event.data.version)

    async def service_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, ServiceUpserted)
        await store_for(tx).apply_service(tx.pipe, event.data.code, event.data.version, active=True)

    async def service_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, ServiceRetired)
        await store_for(tx).apply_service(
            tx.pipe, event.data.code, event.data.version, active=False
        )

    return {
        EventType.REGISTRY_ENTRY_UPSERTED: entry_upserted,
        EventType.REGISTRY_ENTRY_RETIRED: entry_retired,
        EventType.REGISTRY_SERVICE_UPSERTED: service_upserted,
        EventType.REGISTRY_SERVICE_RETIRED: service_retired,
    }
