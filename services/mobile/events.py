"""What the mobile service reacts to, in one table: event type -> handler.

Registry events keep the service's own copy of sites and entries (districts, coordinates,
opening hours); the metrics service's share events feed the planning suggestions. Each handler
reads with ``tx.redis`` and queues its writes on ``tx.pipe``, which commits with the consumer's
dedupe mark.
"""

from __future__ import annotations

from services.contracts import (
    CloudEvent,
    DistrictShareChanged,
    EntryRetired,
    EntryUpserted,
    EventType,
    SiteRetired,
    SiteUpserted,
)
from services.mobile.store import RegistryCopy
from services.plumbing.consumer import Handler, Transaction
from services.plumbing.settings import HubSettings


def handlers(settings: HubSettings) -> dict[EventType, Handler]:
    """The handler table, writing under the hub ``settings``' key prefix."""
    store = RegistryCopy(settings)

    async def site_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SiteUpserted)
        await store.apply_site(tx.pipe, tx.redis, event.data.model_dump(mode="json"), False)

    async def site_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, SiteRetired)
        await store.apply_site(tx.pipe, tx.redis, event.data.model_dump(mode="json"), True)

    async def entry_upserted(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryUpserted)
        await store.apply_entry(tx.pipe, tx.redis, event.data.model_dump(mode="json"), False)

    async def entry_retired(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, EntryRetired)
        await store.apply_entry(tx.pipe, tx.redis, event.data.model_dump(mode="json"), True)

    async def share_changed(event: CloudEvent, tx: Transaction) -> None:
        assert isinstance(event.data, DistrictShareChanged)
        await store.apply_share(tx.pipe, tx.redis, event.data)

    return {
        EventType.REGISTRY_SITE_UPSERTED: site_upserted,
        EventType.REGISTRY_SITE_RETIRED: site_retired,
        EventType.REGISTRY_ENTRY_UPSERTED: entry_upserted,
        EventType.REGISTRY_ENTRY_RETIRED: entry_retired,
        EventType.METRICS_DISTRICT_SHARE_CHANGED: share_changed,
    }
