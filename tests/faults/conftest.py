"""A whole hub built from separate processes the test can kill and restart one by one: the
embedded broker, Valkey with AOF, and each service (several replicas where a scenario wants
them). The books: contacts the services accepted with a 2xx (the simulator's count) must equal
the contacts the metrics service counted - no more, no less."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.hub.embedded import ValkeyProcess, free_port, make_broker
from services.hub.launcher import ServiceProcess
from services.hub.simulate import Endpoints
from services.plumbing.settings import HubSettings
from services.plumbing.topics import ensure_topics

HOST = "127.0.0.1"


@dataclass
class Cluster:
    """The processes of one hub and how to reach them."""

    root: Path
    broker: object
    valkey: ValkeyProcess
    hub: HubSettings
    services: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def env(self, name: str, port: int, instance: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KANALHUB_KAFKA_BOOTSTRAP": self.hub.kafka_bootstrap,
                "KANALHUB_REDIS_URL": self.hub.redis_url,
                "KANALHUB_TOPIC_PARTITIONS": str(self.hub.topic_partitions),
                "KANALHUB_INSTANCE_ID": instance,
                f"KANALHUB_{name.upper()}_PORT": str(port),
                f"KANALHUB_{name.upper()}_HOST": HOST,
            }
        )
        return env

    def add(self, name: str, instance: str = "a") -> ServiceProcess:
        """Start one more replica of ``name`` and wait until it is ready."""
        port = free_port()
        process = ServiceProcess(
            name, port, HOST, self.env(name, port, instance), self.root / f"logs-{instance}"
        )
        process.start(timeout=60)
        self.services.setdefault(name, []).append(process)
        return process

    def url(self, name: str, replica: int = 0) -> str:
        return self.services[name][replica].url

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            registry=self.url("registry"), kvik=self.url("kvik"), metrics=self.url("metrics")
        )

    async def counted(self) -> int:
        """Contacts the metrics service has counted, all time (from its Prometheus scrape)."""
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(60):
                response = await client.get(f"{self.url('metrics')}/metrics")
                if response.status_code == 200 and "kanalhub_contacts" in response.text:
                    break
                await asyncio.sleep(0.5)
            text = response.text
        return round(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "kanalhub_contacts_total"
            )
        )

    async def settle(self, expected: int, within: float = 120.0) -> int:
        """Wait until the count reaches ``expected`` and stays for 3 s (so that a count that
        goes on past it is seen); returns the count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        count = await self.counted()
        while count < expected and loop.time() < deadline:
            await asyncio.sleep(0.5)
            count = await self.counted()
        await asyncio.sleep(3)
        return await self.counted()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Broker, Valkey and one replica of each service, registry seeded with Copenhagen."""
    broker = make_broker("noida", free_port(), tmp_path / "broker")
    valkey = ValkeyProcess(port=free_port(), data_dir=tmp_path / "valkey")
    broker.start()
    valkey.start()
    hub = HubSettings(
        kafka_bootstrap=broker.bootstrap,
        redis_url=valkey.url,
        topic_partitions=3,
    )
    await ensure_topics(hub)
    cluster = Cluster(tmp_path, broker, valkey, hub)
    try:
        for name in ("registry", "kvik", "mobile", "metrics"):
            cluster.add(name)
        yield cluster
    finally:
        for replicas in cluster.services.values():
            for process in replicas:
                process.stop()
        valkey.stop()
        broker.stop()  # type: ignore[attr-defined]
