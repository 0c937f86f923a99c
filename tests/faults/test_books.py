"""The fault suite: simulated kiosk and intake traffic, a fault in the middle of it, and then
the books: contacts accepted with a 2xx == contacts counted by the metrics service.

Every scenario starts its own hub from processes. The fault scenarios (``faults`` marker) take
about a minute each and run with ``make test-faults``; ``make test`` runs the no-fault one."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from services.hub.cluster import Cluster
from services.hub.simulate import Books, Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAYS = 10
"""Ten days of Copenhagen: about 3,000 intake lines and 1,500 KVIK sessions."""


async def _traffic(cluster: Cluster) -> tuple[Simulator, asyncio.Task[Books]]:
    simulator = Simulator(cluster.hub, cluster.endpoints, seed=7)
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
    assert await cluster.settle(books.contacts) == books.contacts


async def test_no_fault_the_books_balance(cluster: Cluster) -> None:
    simulator, task = await _traffic(cluster)
    await _books_balance(cluster, simulator, task)


@pytest.mark.faults
@pytest.mark.xfail(
    reason="open defect: in 1 of 3 runs (2026-11-23) the books were off by 11 of 29,639 "
    "contacts. Suspected: the broker comes back with less than was committed, the relays "
    "re-send, and the re-sent records take offsets the consumer had already committed past, "
    "so it skips them. Needs a consumer that detects a rewritten log (see issue 10's note).",
    strict=False,
)
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


@pytest.mark.faults
async def test_two_replicas_of_every_service_count_nothing_twice(cluster: Cluster) -> None:
    for name in ("kvik", "metrics"):
        cluster.add(name, instance="b")
    simulator, task = await _traffic(cluster)
    await asyncio.sleep(3)
    cluster.services["kvik"][1].kill()  # a replica dies holding whatever is in its outbox
    await _books_balance(cluster, simulator, task)
