"""Operator commands of the kvik service, run from ``kanalhub kvik quarantine ...``.

The periodic loops (sweeper, liveness, escalation) set aside an item they cannot process (see
:mod:`services.kvik.quarantine`). An operator lists those items with their reasons, then either
releases one (it goes back into its loop's set and is tried again next round: after the cause
is fixed, e.g. a corrected registry copy or a deployed fix) or drops it (it is forgotten; a
session's record is deleted with it, since it holds the value that could not be published and
will never become an event; a kiosk re-enters the liveness check with its next heartbeat; a
help request expires with its record).

The commands talk to the service's Redis directly (``KANALHUB_REDIS_URL``), like the metrics
service's ``rebuild`` and ``redrive``; no HTTP route exposes the quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.kvik.settings import KvikSettings
from services.kvik.store import SERVICE, KvikStore
from services.plumbing.outbox import Outbox
from services.plumbing.runtime import connect_redis


@dataclass(frozen=True)
class Quarantined:
    """One quarantined item as an operator sees it."""

    field: str
    """``<loop>:<item>``: what ``release`` and ``drop`` take."""
    loop: str
    item: str
    reason: str
    at: str


def _store(settings: KvikSettings) -> KvikStore:
    redis = connect_redis(settings)
    return KvikStore(redis, settings.hub, Outbox(redis, settings.hub, SERVICE))


async def quarantine_list(settings: KvikSettings) -> list[Quarantined]:
    """Every quarantined item, oldest first."""
    store = _store(settings)
    try:
        entries = await store.quarantined()
    finally:
        await store.redis.aclose()
    items = [
        Quarantined(
            field=field,
            loop=entry.get("loop", ""),
            item=entry.get("item", ""),
            reason=entry.get("reason", ""),
            at=entry.get("at", ""),
        )
        for field, entry in entries.items()
    ]
    return sorted(items, key=lambda item: (item.at, item.field))


async def quarantine_release(settings: KvikSettings, field: str) -> bool:
    """Put one quarantined item back into its loop; False if there is no such item."""
    store = _store(settings)
    try:
        return await store.release(field)
    finally:
        await store.redis.aclose()


async def quarantine_drop(settings: KvikSettings, field: str) -> bool:
    """Forget one quarantined item (and delete a session's record); False if there is none."""
    store = _store(settings)
    try:
        return await store.drop_quarantined(field)
    finally:
        await store.redis.aclose()
