"""The district-share event: each district's share over the last ``share_window_days`` days,
published when it changed, at most once per ``share_event_interval_seconds`` per district,
however many replicas run (a per-district lock in Redis that expires with the interval)."""

from __future__ import annotations

import asyncio
import datetime as dt

from redis.asyncio import Redis

from services.contracts import DistrictShareChanged, EventType, new_event
from services.metrics import domain, figures
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore
from services.plumbing.backoff import pause, stop_if_cancelled
from services.plumbing.logging import get_logger
from services.plumbing.outbox import Outbox

log = get_logger(__name__)


async def publish_changed_shares(
    store: MetricsStore,
    redis: Redis,
    outbox: Outbox,
    settings: MetricsSettings,
    now: dt.datetime,
) -> int:
    """Stage a share event for every district whose share moved since its last event and whose
    lock this replica gets; returns how many were staged."""
    last = domain.local_day(now)
    first = last - dt.timedelta(days=settings.share_window_days - 1)
    shares = await figures.shares_in(store, redis, first, last)
    lock_ms = max(1, int(settings.share_event_interval_seconds * 1000))
    staged = 0
    for district, share in shares.items():
        current = "none" if share.share is None else f"{share.share:.4f}"
        before = await store.published_share(redis, district)
        if before == current or (before is None and share.share is None):
            continue  # unchanged, or nothing to say yet
        if not await store.claim_share_event(redis, district, lock_ms):
            continue
        event = new_event(
            EventType.METRICS_DISTRICT_SHARE_CHANGED,
            DistrictShareChanged(
                district=district,
                window_days=settings.share_window_days,
                first_day=first,
                last_day=last,
                self_service=share.self_service,
                assisted=share.assisted,
                share=share.share,
                computed_at=now,
            ),
            source=settings.source,
        )
        async with redis.pipeline(transaction=True) as pipe:
            store.record_published_share(pipe, district, current)
            outbox.stage(pipe, event)
            await pipe.execute()
        staged += 1
    return staged


async def run_share_events(
    store: MetricsStore,
    redis: Redis,
    outbox: Outbox,
    settings: MetricsSettings,
    stopping: asyncio.Event,
) -> None:
    """Check for moved shares twice per interval until ``stopping`` is set."""
    while not stopping.is_set():
        try:
            await publish_changed_shares(store, redis, outbox, settings, dt.datetime.now(dt.UTC))
        except Exception as exc:
            stop_if_cancelled()
            log.warning("district-share events failed, will retry", error=repr(exc))
        await pause(settings.share_event_interval_seconds / 2, stopping)
