"""The fault suite on a cluster of three Apache Kafka nodes (KRaft, every node broker and
controller; topics replicated three times, ``min.insync.replicas=2``, the producer's
``acks=all``): a broker SIGKILLed, the active controller SIGKILLed, a rolling restart of all
three, and a consumer replica SIGKILLed without a LeaveGroup - each mid-load, each ending with
the books: contacts accepted with a 2xx == contacts counted, per channel.

The traffic and the books are those of ``test_books.py``. A scenario takes two to four
minutes (three JVMs on two cores), hence its own timeout."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.hub.cluster import Cluster
from services.hub.simulator.driver import Books, Simulator
from tests.faults.test_books import _books_balance, _traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(900)]

NODE_START = 120.0
"""How long a restarted node may take to answer Metadata (about 10-20 s on a busy machine)."""


@pytest.fixture
async def kafka3(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Three Apache Kafka nodes, Valkey and one replica of each service."""
    started = time.monotonic()
    cluster = await Cluster.start(tmp_path, brokers=3)
    print(f"\n3-node hub ready in {time.monotonic() - started:.1f} s")
    try:
        yield cluster
    finally:
        cluster.stop()


async def _balance_and_report(
    cluster: Cluster,
    what: str,
    started: float,
    simulator: Simulator,
    task: asyncio.Task[Books],
) -> None:
    """The books of ``test_books.py``, and the figures printed (``pytest -s`` shows them)."""
    await _books_balance(cluster, simulator, task)
    books = task.result()
    counted = await cluster.counted_by_channel()
    print(
        f"{what}: accepted {books.contacts} == counted {sum(counted.values())}; "
        f"per channel accepted {dict(sorted(books.by_channel.items()))}, "
        f"counted {dict(sorted(counted.items()))}; load to balance "
        f"{time.monotonic() - started:.1f} s"
    )


async def _fully_replicated(cluster: Cluster, within: float = 120.0) -> float:
    """Wait until every partition of every topic has all its replicas in sync (a rolling
    restart takes the next node down only then); returns the seconds waited."""
    started = time.monotonic()
    lagging: list[str] = []
    while time.monotonic() - started < within:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.hub.kafka_bootstrap)
        try:
            await admin.start()
            topics = await admin.describe_topics()
            lagging = [
                f"{topic['topic']}-{partition['partition']}"
                for topic in topics
                for partition in topic["partitions"]
                if set(partition["isr"]) != set(partition["replicas"])
            ]
            if topics and not lagging:
                return time.monotonic() - started
        except (KafkaError, OSError, TimeoutError):  # a node on its way up: ask again
            lagging = ["(metadata not answered)"]
        finally:
            await admin.close()
        await asyncio.sleep(1)
    raise AssertionError(f"partitions still under-replicated after {within:.0f} s: {lagging}")


async def test_a_broker_sigkilled_mid_load_and_restarted(kafka3: Cluster) -> None:
    started = time.monotonic()
    simulator, task = await _traffic(kafka3)
    await asyncio.sleep(3)
    # kafka-1: first in the bootstrap list and the likely coordinator of the groups. Killing it
    # once left the metrics and mobile consumers hung in their reconnect for good (aiokafka's
    # stop/start ignored the cancel of asyncio.wait_for); the consumer now abandons a step
    # that outlives its bound (services/plumbing/consumer.py, ``within``).
    victim = kafka3.brokers[0]
    victim.kill()
    await asyncio.sleep(5)  # the two others keep the load: two in-sync replicas suffice
    victim.start(timeout=NODE_START)
    print(f"\nkilled and restarted kafka node {victim.name}")
    await _balance_and_report(kafka3, "broker SIGKILL", started, simulator, task)
    await _fully_replicated(kafka3)


async def test_the_active_controller_sigkilled_mid_load(kafka3: Cluster) -> None:
    started = time.monotonic()
    simulator, task = await _traffic(kafka3)
    await asyncio.sleep(3)
    controller = kafka3.active_controller()
    controller.kill()
    killed = time.monotonic()
    elected = None
    for _ in range(240):
        try:
            successor = kafka3.active_controller()
        except LookupError:
            successor = None
        if successor is not None and successor is not controller:
            elected = time.monotonic() - killed
            break
        await asyncio.sleep(0.25)
    assert elected is not None, "no new quorum leader within 60 s"
    print(
        f"\nkilled the active controller, node {controller.node_id}; node "
        f"{kafka3.active_controller().node_id} led the quorum {elected:.1f} s later"
    )
    await asyncio.sleep(2)
    controller.start(timeout=NODE_START)
    await _balance_and_report(kafka3, "controller SIGKILL", started, simulator, task)


async def test_a_rolling_restart_of_all_three_mid_load(kafka3: Cluster) -> None:
    started = time.monotonic()
    simulator, task = await _traffic(kafka3)
    await asyncio.sleep(3)
    steps = []
    for node in kafka3.brokers:
        step = time.monotonic()
        node.stop(timeout=30)  # SIGTERM: a controlled shutdown hands its leaderships over
        node.start(timeout=NODE_START)
        # The next node goes down only once this one is back in every ISR, as an operator
        # would do it: otherwise a partition could be left with one in-sync replica.
        caught_up = await _fully_replicated(kafka3)
        steps.append(f"{node.name} {time.monotonic() - step:.1f} s (in sync after {caught_up:.1f})")
    print(f"\nrolling restart: {', '.join(steps)}; load still running: {not task.done()}")
    await _balance_and_report(kafka3, "rolling restart", started, simulator, task)


async def test_a_consumer_replica_sigkilled_without_leaving_its_group(kafka3: Cluster) -> None:
    # A second metrics replica shares the partitions; the first one serves the HTTP side
    # (intake and the scrape the books read), the second is killed: SIGKILL sends no
    # LeaveGroup, so its partitions wait for the session timeout before the first takes them.
    kafka3.add_replicas(["metrics"], instance="b")
    survivor = kafka3.services["metrics"][0]
    started = time.monotonic()
    simulator, task = await _traffic(kafka3)
    await asyncio.sleep(4)
    before = _assignments(survivor.log_path)
    kafka3.services["metrics"][1].kill()
    killed = time.monotonic()
    for _ in range(240):  # the session timeout (10 s) and a rebalance: well under 60 s
        if _assignments(survivor.log_path) != before:
            break
        await asyncio.sleep(0.25)
    after = _assignments(survivor.log_path)
    took_over = time.monotonic() - killed
    print(
        f"\nkilled metrics replica b (no LeaveGroup); replica a held {len(before[-1])} "
        f"partitions, {len(after[-1])} after {took_over:.1f} s"
    )
    # The survivor took the dead member's partitions: every partition of its four topics.
    assert len(after[-1]) > len(before[-1]), (before[-1], after[-1])
    await _balance_and_report(kafka3, "consumer SIGKILL", started, simulator, task)


def _assignments(log: Path) -> list[list[str]]:
    """The partitions a service replica was given at each rebalance, from its log."""
    found: list[list[str]] = [[]]
    for line in log.read_text(errors="replace").splitlines():
        if "partitions assigned" in line:
            found.append(re.findall(r"'([^']+:\d+)'", line))
    return found
