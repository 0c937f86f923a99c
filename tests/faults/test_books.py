"""The fault suite: simulated kiosk, intake, desk-ticket and mobile traffic, a fault in the
middle of it, and then the books: contacts accepted with a 2xx == contacts counted by the
metrics service.

Every scenario starts its own hub from processes. The fault scenarios (``faults`` marker) take
about a minute or two each and run with ``make test-faults``; ``make test`` runs the no-fault one.

Faults: the broker, a metrics consumer or Valkey killed or stopped mid-load; the network between
the kiosks and the hub dropping, delaying and resetting connections (``proxy.py``), with the
kiosks retrying; a kvik replica killed while its outbox relay holds unpublished entries."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.hub.cluster import Cluster
from services.hub.launcher import ServiceProcess
from services.hub.simulator.driver import Books, Endpoints, Simulator
from tests.faults.proxy import Fault, FaultProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAYS = 10
"""Ten days of Copenhagen: about 3,000 intake lines, 1,500 KVIK sessions, 400 desk tickets and
two visits at the mobile stops (ten days hold every weekday)."""


async def _traffic(
    cluster: Cluster, endpoints: Endpoints | None = None, client_timeout: float = 60.0
) -> tuple[Simulator, asyncio.Task[Books]]:
    simulator = Simulator(
        cluster.hub, endpoints or cluster.endpoints, seed=7, timeout=client_timeout
    )
    last = dt.date.today() - dt.timedelta(days=1)
    task = asyncio.create_task(
        simulator.replay(last - dt.timedelta(days=DAYS - 1), last, concurrency=2)
    )
    return simulator, task


async def _books_balance(cluster: Cluster, simulator: Simulator, task: asyncio.Task[Books]) -> None:
    books = await asyncio.wait_for(task, 300)
    await simulator.close()
    assert books.contacts > 0
    assert books.sessions_refused == 0
    # every channel is in the books: served desk tickets and mobile contacts as well as the
    # kiosks' sessions and the platforms' intake
    assert books.desk_served > 0, books
    assert books.mobile_contacts > 0, books
    counted = await cluster.settle(books.contacts)
    if counted != books.contacts:
        by_channel = await cluster.counted_by_channel()
        raise AssertionError(
            f"accepted {books.contacts}, counted {counted}; per channel accepted "
            f"{dict(sorted(books.by_channel.items()))}, counted {dict(sorted(by_channel.items()))}"
            f"; {await _outboxes(cluster)}"
        )


async def _outboxes(cluster: Cluster) -> str:
    """What is still in each service's outbox: tells events that never reached the broker from
    events the metrics service did not count (for the message of a failed balance)."""
    redis = Redis.from_url(cluster.hub.redis_url)
    try:
        depths = [
            f"{name}: {await redis.xlen(cluster.hub.key(name, 'outbox'))} in the outbox"
            for name in cluster.services
        ]
    finally:
        await redis.aclose()
    return "; ".join(depths)


async def test_no_fault_the_books_balance(cluster: Cluster) -> None:
    simulator, task = await _traffic(cluster)
    await _books_balance(cluster, simulator, task)


@pytest.mark.faults
async def test_broker_killed_mid_load_and_restarted(cluster: Cluster) -> None:
    simulator, task = await _traffic(cluster)
    await asyncio.sleep(3)
    cluster.broker.kill()
    await asyncio.sleep(3)
    cluster.broker.start(timeout=60)
    await _books_balance(cluster, simulator, task)


@pytest.mark.faults
async def test_metrics_consumer_killed_mid_batch_and_restarted(cluster: Cluster) -> None:
    simulator, task = await _traffic(cluster)
    await asyncio.sleep(4)
    metrics = cluster.services["metrics"][0]
    metrics.kill()
    await asyncio.sleep(1)
    metrics.start(timeout=60)
    await _books_balance(cluster, simulator, task)


@pytest.mark.faults
async def test_valkey_restarted_during_the_load(cluster: Cluster) -> None:
    simulator, task = await _traffic(cluster)
    await asyncio.sleep(3)
    cluster.valkey.stop()
    await asyncio.sleep(2)
    cluster.valkey.start(timeout=60)
    await _books_balance(cluster, simulator, task)


CLIENT_TIMEOUT = 5.0
"""How long a simulated client waits for an answer in the scenarios with a proxy: answers take
well under a second, so only a fault (or a frozen replica) makes it wait this long."""


@pytest.mark.faults
async def test_kiosks_retrying_through_dropped_and_timed_out_connections_are_counted_once(
    cluster: Cluster,
) -> None:
    # Each fault on one request in 20; intake to the metrics service goes through its own
    # proxy too. A delayed answer is held well past the client's timeout. Every request takes
    # the next draw of the seeded RNG, so the fault counts hardly vary from run to run (4 to 7
    # of each kind among the kvik service's ~86 requests with this seed).
    rates = dict.fromkeys(Fault, 0.05)
    kvik = FaultProxy([cluster.url("kvik")], rates, seed=11, delay=CLIENT_TIMEOUT * 2)
    intake = FaultProxy([cluster.url("metrics")], rates, seed=12, delay=CLIENT_TIMEOUT * 2)
    async with kvik, intake:
        endpoints = dataclasses.replace(cluster.endpoints, kvik=kvik.url, metrics=intake.url)
        simulator, task = await _traffic(cluster, endpoints, client_timeout=CLIENT_TIMEOUT)
        books = await asyncio.wait_for(task, 300)
    print(
        f"\nkvik proxy: {_counts(kvik)}; intake proxy: {_counts(intake)}; "
        f"books: {books.contacts} contacts, {books.sessions_accepted} sessions accepted "
        f"({books.sessions_replayed} answered 200 on a retry), {books.requests} requests, "
        f"{books.retries} retries"
    )
    assert {fault: kvik.injected[fault] > 0 for fault in Fault} == dict.fromkeys(Fault, True)
    await _books_balance(cluster, simulator, task)


def _counts(proxy: FaultProxy) -> str:
    faults = ", ".join(f"{fault.value} {proxy.injected[fault]}" for fault in Fault)
    return f"{faults}, {proxy.forwarded} forwarded"


async def _lease_holder(cluster: Cluster, redis: Redis, service: str) -> tuple[ServiceProcess, str]:
    """The replica whose outbox relay holds the lease, and its relay's consumer name (the lease
    value, ``hostname-pid-hex``)."""
    lease = f"{cluster.hub.key(service, 'outbox')}:lease"
    for _ in range(240):
        holder = await redis.get(lease)
        if isinstance(holder, bytes):
            consumer = holder.decode()
            pid = int(consumer.rsplit("-", 2)[1])
            for process in cluster.services[service]:
                if process.pid == pid:
                    return process, consumer
        await asyncio.sleep(0.25)
    raise AssertionError(f"no {service} replica took the outbox lease")


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


async def _freeze_holding_entries(
    redis: Redis, stream: str, process: ServiceProcess, consumer: str, tries: int = 600
) -> tuple[int, int]:
    """SIGSTOP ``process`` at a moment its relay holds entries it read but the broker has not
    acknowledged (the group's pending entries owned by ``consumer``); returns how many, and
    after how many tries. A moment without any is let go (SIGCONT) and tried again a little
    later."""
    pid = process.pid
    assert pid is not None
    rng = random.Random(3)
    for attempt in range(1, tries + 1):
        os.kill(pid, signal.SIGSTOP)
        for _ in range(1000):  # the signal is delivered asynchronously
            if _stopped(pid):
                break
            await asyncio.sleep(0.001)
        # A command the relay wrote just before it stopped (an XACK) is still served: let it.
        await asyncio.sleep(0.02)
        summary = await redis.xpending(stream, "relay")
        held = sum(
            int(owner["pending"])
            for owner in summary["consumers"]
            if owner["name"].decode() == consumer
        )
        if held:
            return held, attempt
        os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(rng.uniform(0.005, 0.05))
    return 0, tries


@pytest.mark.faults
async def test_a_replica_killed_holding_outbox_entries_loses_none_and_counts_none_twice(
    cluster: Cluster,
) -> None:
    # Two replicas of every service that scales out; kiosks reach both kvik replicas through
    # a load balancer that skips a dead one, as they would in production.
    cluster.add_replicas(["kvik", "metrics"], instance="b")
    balancer = FaultProxy([cluster.url("kvik", 0), cluster.url("kvik", 1)])
    redis = Redis.from_url(cluster.hub.redis_url)
    stream = cluster.hub.key("kvik", "outbox")
    try:
        async with balancer:
            endpoints = dataclasses.replace(cluster.endpoints, kvik=balancer.url)
            simulator, task = await _traffic(cluster, endpoints, client_timeout=CLIENT_TIMEOUT * 2)
            holder, consumer = await _lease_holder(cluster, redis, "kvik")
            held, tries = await _freeze_holding_entries(redis, stream, holder, consumer)
            replica = cluster.services["kvik"].index(holder)
            holder.kill()  # SIGKILL: the frozen relay never acknowledges what it holds
            print(
                f"\nkilled kvik replica {replica} (relay {consumer}) holding {held} outbox "
                f"entries, frozen at try {tries}"
            )
            assert held > 0
            await _books_balance(cluster, simulator, task)
        # The survivor's relay took over what the dead one held.
        summary = await redis.xpending(stream, "relay")
        assert consumer not in {owner["name"].decode() for owner in summary["consumers"]}
    finally:
        await redis.aclose()
