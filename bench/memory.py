"""Memory probes for the whole-hub benchmarks: process RSS, Valkey ``used_memory``, the bytes
held per group of Redis keys (dedupe marks apart from everything else), the events the hub
has published and consumed so far, and a least-squares slope.

Key groups are found by pattern, not by knowing how a service names its keys: a key's group is
its first three ``:``-separated segments (``kanalhub:metrics:seen:<id>`` ->
``kanalhub:metrics:seen``), and a group is dedupe marks when one of those segments says so
(``seen``, ``dedupe``, ``marks``). So the probe keeps working if mark storage changes shape
(one key per mark, a set or sorted set per service, time buckets), as long as the name does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.hub.cluster import Cluster

MARK_WORDS = frozenset({"seen", "dedupe", "marks"})
"""Key segments that name dedupe marks."""
MiB = 1024 * 1024


def rss_bytes(pid: int | None) -> int:
    """Resident set size of a process (``VmRSS`` of ``/proc/<pid>/status``), 0 if it is gone."""
    if pid is None:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cluster_rss(cluster: Cluster) -> dict[str, int]:
    """RSS per service (its replicas summed) and of Valkey, in bytes."""
    rss = {
        name: sum(rss_bytes(p.pid) for p in replicas) for name, replicas in cluster.services.items()
    }
    rss["valkey"] = rss_bytes(cluster.valkey.pid)
    return rss


def cluster_urls(cluster: Cluster) -> list[str]:
    """The base URL of every service replica, for scraping their event counts."""
    return [p.url for replicas in cluster.services.values() for p in replicas]


async def used_memory(redis: Redis) -> int:
    """Valkey's ``used_memory`` (``INFO memory``): what its allocator holds for data."""
    info: dict[str, Any] = await redis.info("memory")
    return int(info["used_memory"])


def key_group(key: str) -> str:
    """The group of a Redis key: its first three ``:``-separated segments."""
    return ":".join(key.split(":")[:3])


def is_mark_group(group: str) -> bool:
    """True for a group of dedupe marks (a segment such as ``seen``)."""
    return any(segment in MARK_WORDS for segment in group.split(":")[1:])


@dataclass
class GroupSize:
    """How many keys a group has and what they hold (sampled ``MEMORY USAGE`` x count)."""

    keys: int = 0
    bytes: float = 0.0
    sampled: int = 0
    expiring: float = 0.0
    """Fraction of the sampled keys that have a TTL."""
    ttl_s: int = 0
    """The longest remaining TTL among the sampled keys: about the group's configured TTL."""


@dataclass
class KeySpace:
    """Bytes per key group, estimated from a sample of each group's keys."""

    groups: dict[str, GroupSize] = field(default_factory=dict)

    @property
    def mark_bytes(self) -> float:
        """Estimated bytes of dedupe marks."""
        return sum(g.bytes for name, g in self.groups.items() if is_mark_group(name))

    @property
    def mark_keys(self) -> int:
        """Keys that hold dedupe marks (one per mark while marks are one key each)."""
        return sum(g.keys for name, g in self.groups.items() if is_mark_group(name))

    @property
    def other_bytes(self) -> float:
        """Estimated bytes of every other key."""
        return sum(g.bytes for name, g in self.groups.items() if not is_mark_group(name))

    @property
    def persistent_bytes(self) -> float:
        """Estimated bytes of keys without a TTL (what the domain itself must keep bounded)."""
        return sum(g.bytes * (1 - g.expiring) for g in self.groups.values())

    def steady_state_bytes(self, days_covered: float, marks_only: bool = False) -> float:
        """COMPUTED, not measured: what the expiring keys would hold if each group's TTL
        (its longest sampled TTL) were counted in the simulated days the data covers, assuming
        a group grows evenly over ``days_covered`` days; groups whose TTL outlasts the
        covered days are kept whole."""
        total = 0.0
        for name, group in self.groups.items():
            if marks_only and not is_mark_group(name):
                continue
            if group.expiring and group.ttl_s and days_covered > 0:
                share = min(1.0, group.ttl_s / 86400 / days_covered)
                total += group.bytes * group.expiring * share
        return total


async def key_space(redis: Redis, sample: int = 50, seed: int = 7) -> KeySpace:
    """SCAN every key, count keys per group, and ``MEMORY USAGE`` a random sample of up to
    ``sample`` keys per group (reservoir sampling), scaled to the group's count.

    A full ``MEMORY USAGE`` of every key would cost as much as the traffic being measured;
    a sample of 50 keys of similar shape is within a few per cent.
    """
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    reservoirs: dict[str, list[bytes]] = {}
    async for key in redis.scan_iter(count=2000):
        group = key_group(key.decode("utf-8", "replace"))
        seen = counts.get(group, 0) + 1
        counts[group] = seen
        reservoir = reservoirs.setdefault(group, [])
        if len(reservoir) < sample:
            reservoir.append(key)
        else:
            slot = rng.randrange(seen)
            if slot < sample:
                reservoir[slot] = key
    space = KeySpace()
    for group, keys in reservoirs.items():
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.memory_usage(key)
                pipe.ttl(key)
            answers = await pipe.execute()
        sizes = [size for size in answers[0::2] if size is not None]
        ttls = [ttl for ttl in answers[1::2] if ttl is not None and ttl > 0]
        mean = sum(sizes) / len(sizes) if sizes else 0.0
        space.groups[group] = GroupSize(
            keys=counts[group],
            bytes=mean * counts[group],
            sampled=len(sizes),
            expiring=len(ttls) / len(keys) if keys else 0.0,
            ttl_s=max(ttls, default=0),
        )
    return space


async def hub_event_counts(urls: list[str]) -> tuple[int, int]:
    """Events published (relay acknowledged) and consumed (handled or duplicate) by the
    services at ``urls``, from their Prometheus scrapes; a service that does not answer adds 0."""
    published = consumed = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls:
            try:
                response = await client.get(f"{url}/metrics")
            except httpx.HTTPError:
                continue
            for family in text_string_to_metric_families(response.text):
                for s in family.samples:
                    if s.name == "kanalhub_events_published_total":
                        published += s.value
                    elif s.name == "kanalhub_events_consumed_total" and s.labels.get("outcome") in {
                        "handled",
                        "duplicate",
                    }:
                        consumed += s.value
    return round(published), round(consumed)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs`` (0.0 with fewer than two distinct xs)."""
    if len(xs) < 2:
        return 0.0
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
