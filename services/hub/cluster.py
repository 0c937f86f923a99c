"""A hub built from separate processes that can be killed and restarted one by one: the
embedded broker, Valkey with AOF, and each service (several replicas where wanted). The fault
suite and the whole-hub benchmark use it; ``kanalhub run`` is the friendlier front for people."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.hub.apache_kafka import ApacheKafkaNode, kafka_cluster
from services.hub.embedded import (
    DEFAULT_BROKER,
    KafkaBroker,
    ValkeyProcess,
    free_port,
    make_broker,
)
from services.hub.launcher import ServiceProcess, registry_copied, service_env
from services.hub.simulator.driver import Endpoints
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

HOST = "127.0.0.1"
SERVICES = ("registry", "kvik", "mobile", "metrics")


@dataclass
class Cluster:
    """The processes of one hub and how to reach them."""

    root: Path
    broker: KafkaBroker
    valkey: ValkeyProcess
    hub: HubSettings
    services: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    #: Every broker node; ``[broker]`` for a single broker, three Apache Kafka nodes for
    #: ``start(..., brokers=3)``.
    brokers: list[KafkaBroker] = field(default_factory=list)

    @classmethod
    async def start(cls, root: Path, partitions: int = 3, brokers: int = 1) -> Cluster:
        """Broker, Valkey and one replica of each service (the registry seeds Copenhagen).

        ``brokers=1`` runs the embedded broker (``KANALHUB_EMBEDDED_BROKER``); more runs that
        many Apache Kafka nodes in one KRaft quorum, topics replicated three times
        (``min.insync.replicas=2``, see ``apache_kafka.server_properties``)."""
        nodes: list[KafkaBroker]
        if brokers == 1:
            nodes = [
                make_broker(
                    os.environ.get("KANALHUB_EMBEDDED_BROKER", DEFAULT_BROKER),  # type: ignore[arg-type]
                    free_port(),
                    root / "broker",
                )
            ]
            nodes[0].start()
        else:
            nodes = list(kafka_cluster(root / "kafka", brokers, HOST, partitions))
            try:
                # Side by side: a node is ready only once a quorum of them has started.
                for node in nodes:
                    node.launch()
                for node in nodes:
                    node.wait_ready(120)
            except BaseException:
                stop_together(nodes)
                raise
        broker = nodes[0]
        valkey = ValkeyProcess(port=free_port(), data_dir=root / "valkey")
        valkey.start()
        hub = HubSettings(
            kafka_bootstrap=",".join(node.bootstrap for node in nodes),
            redis_url=valkey.url,
            topic_partitions=partitions,
            topic_replication=min(3, len(nodes)),
        ).model_copy(update=broker.client_settings())
        await ensure_topics(hub)
        cluster = cls(root, broker, valkey, hub, brokers=nodes)
        for name in SERVICES:
            cluster.add(name)
        await cluster.registry_copied()
        return cluster

    async def registry_copied(self, within: float = 120.0) -> None:
        """Wait until kvik, mobile and metrics have consumed all the registry published (its
        seed of Copenhagen), so that traffic does not meet refusals for entries and services
        they do not know yet (see ``launcher.registry_copied``)."""
        await registry_copied(self.hub, self.services, within)

    def stop(self) -> None:
        """Stop every process, services first."""
        for replicas in self.services.values():
            for process in replicas:
                process.stop()
        self.valkey.stop()
        stop_together(self.brokers or [self.broker])

    def active_controller(self) -> ApacheKafkaNode:
        """The KRaft quorum's leader (the active controller) among the running nodes.

        Read from each node's ``__cluster_metadata-0/quorum-state`` file, which KRaft rewrites
        at every election: the leader named with the highest epoch. The Metadata answer's
        controller id cannot tell: in KRaft a broker names a random broker there."""
        best: tuple[int, int] | None = None
        for node in self.brokers:
            if not isinstance(node, ApacheKafkaNode) or not node.is_running:
                continue
            state = node.log_dir / "__cluster_metadata-0" / "quorum-state"
            try:
                quorum = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            leader, epoch = int(quorum.get("leaderId", -1)), int(quorum.get("leaderEpoch", -1))
            if leader >= 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        for node in self.brokers:
            if best is not None and isinstance(node, ApacheKafkaNode) and node.node_id == best[0]:
                return node
        raise LookupError("no running Kafka node names a quorum leader")

    def add(self, name: str, instance: str = "a") -> ServiceProcess:
        """Start one more replica of ``name`` (its own instance id) and wait until ready."""
        return self.add_replicas([name], instance)[0]

    def add_replicas(self, names: Sequence[str], instance: str = "a") -> list[ServiceProcess]:
        """Start one more replica of each service in ``names`` (instance id ``instance``), all
        side by side - a service takes seconds to import and connect - and wait until each is
        ready."""
        taken = {process.port for replicas in self.services.values() for process in replicas}
        processes = []
        for name in names:
            port = free_port()
            # A child binds its port only once it has started: the next free port could be
            # the one just handed out.
            while port in taken:
                port = free_port()
            taken.add(port)
            process = ServiceProcess(
                name,
                port,
                HOST,
                service_env(self.hub, name, port, HOST, instance),
                self.root / f"logs-{instance}",
            )
            process.launch()
            # Registered at once, so that stop() ends it even if another fails to start.
            self.services.setdefault(name, []).append(process)
            processes.append(process)
        for process in processes:
            process.wait_ready(60)
        return processes

    def url(self, name: str, replica: int = 0) -> str:
        """Base URL of a replica of a service."""
        return self.services[name][replica].url

    @property
    def endpoints(self) -> Endpoints:
        """Where the simulator sends its traffic (the first replicas)."""
        return Endpoints(
            registry=self.url("registry"),
            kvik=self.url("kvik"),
            mobile=self.url("mobile"),
            metrics=self.url("metrics"),
        )

    async def counted(self) -> int:
        """Contacts the metrics service has counted, all time (from its Prometheus scrape)."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url('metrics')}/metrics")
            for _ in range(60):
                if response.status_code == 200 and "kanalhub_contacts" in response.text:
                    break
                await asyncio.sleep(0.5)
                response = await client.get(f"{self.url('metrics')}/metrics")
        return round(
            sum(
                sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if sample.name == "kanalhub_contacts_total"
            )
        )

    async def counted_by_channel(self) -> dict[str, int]:
        """Contacts the metrics service has counted per channel, all time."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url('metrics')}/metrics")
        counted: dict[str, int] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "kanalhub_contacts_total":
                    channel = sample.labels["channel"]
                    counted[channel] = counted.get(channel, 0) + round(sample.value)
        return counted

    async def settle(self, expected: int, within: float = 120.0, quiet: float = 3.0) -> int:
        """Wait until the count reaches ``expected``, then ``quiet`` seconds more (so that a
        count going past it is seen); returns the count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        count = await self.counted()
        while count < expected and loop.time() < deadline:
            await asyncio.sleep(0.25)
            count = await self.counted()
        await asyncio.sleep(quiet)
        return await self.counted()


def stop_together(nodes: Sequence[KafkaBroker], timeout: float = 30) -> None:
    """Stop broker nodes side by side: one by one, the last waits for a quorum that is gone."""
    threads = [threading.Thread(target=node.stop, args=(timeout,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
