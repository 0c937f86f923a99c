"""Operator commands of the registry, run from ``kanalhub registry ...``."""

from __future__ import annotations

from services.plumbing.outbox import Outbox
from services.plumbing.runtime import connect_redis
from services.registry.settings import RegistrySettings
from services.registry.store import SERVICE, RegistryStore


async def replay(settings: RegistrySettings) -> int:
    """Stage the current state of every service, site and entry into the registry's outbox.

    The registry's relay publishes them (a running registry, or the next one to start), so a
    new consumer can build its copy from the topic. Returns how many events were staged.
    """
    redis = connect_redis(settings)
    try:
        outbox = Outbox(redis, settings.hub, SERVICE)
        return await RegistryStore(redis, settings.hub, outbox, settings.source).replay()
    finally:
        await redis.aclose()
