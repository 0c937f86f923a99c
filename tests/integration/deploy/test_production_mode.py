"""Production-mode smoke test: the four services run the way their containers do.

Same entrypoint (``python -m services.hub.cli serve <service>``, what ``kanalhub serve`` runs),
settings only from the environment with ``KANALHUB_ENVIRONMENT=production``, JSON logs, no
embedded launcher. The session broker and Valkey stand in for Kafka and Redis; topics and keys
are this module's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from redis.asyncio import Redis

from services.contracts import CloudEvent, Topic
from services.hub.embedded import KafkaBroker, ValkeyProcess, client_env, free_port
from services.plumbing.outbox import Outbox
from services.plumbing.settings import DEVELOPMENT_JWT_SECRET, Environment, HubSettings
from tests.factories import contact_recorded

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("registry", "kvik", "mobile", "metrics")
READY_WITHIN = 30.0
STOP_WITHIN = 10.0


@dataclass
class Running:
    """One service process started as its container starts it."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text(encoding="utf-8").splitlines() if line]


SCRAPE_TOKEN = secrets.token_hex(32)
"""The Prometheus scrape token of the production-mode hub."""


def production_env(**settings: str) -> dict[str, str]:
    """This process's environment without any KANALHUB_ setting, plus ``settings``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KANALHUB_")}
    return {**base, "KANALHUB_ENVIRONMENT": "production", "KANALHUB_LOG_FORMAT": "json", **settings}


def serve(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``kanalhub serve <name>``, as the image's ENTRYPOINT runs it."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "services.hub.cli", "serve", name],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def hub_env(broker: KafkaBroker, valkey: ValkeyProcess) -> dict[str, str]:
    """Shared production settings: real-looking secret, this module's own topics and keys."""
    return {
        "KANALHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
        "KANALHUB_REDIS_URL": valkey.url,
        "KANALHUB_TOPIC_SUFFIX": f".t{uuid4().hex[:10]}",
        "KANALHUB_KEY_PREFIX": f"test{uuid4().hex[:10]}",
        "KANALHUB_TOPIC_PARTITIONS": "3",
        "KANALHUB_JWT_SECRET": secrets.token_urlsafe(48),
        "KANALHUB_SUBJECT_KEY": secrets.token_urlsafe(48),
        # production scrapes need the scrape token (docs/security.md, public surfaces)
        "KANALHUB_PROMETHEUS_TOKEN": SCRAPE_TOKEN,
        **client_env(broker.client_settings()),
    }


@pytest.fixture(scope="module")
def hub(
    hub_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    """The four services, started in parallel and ready (``/readyz`` 200)."""
    logs = tmp_path_factory.mktemp("production-mode")
    running: dict[str, Running] = {}
    for name in SERVICES:
        port = free_port()
        env = production_env(
            **hub_env,
            KANALHUB_INSTANCE_ID=f"{name}-0",
            **{f"KANALHUB_{name.upper()}_HOST": "127.0.0.1"},
            **{f"KANALHUB_{name.upper()}_PORT": str(port)},
        )
        log = logs / f"{name}.log"
        running[name] = Running(name, port, serve(name, env, log), log)
    try:
        for service in running.values():
            wait_ready(service)
        yield running
    finally:
        for service in running.values():
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait(timeout=10)


def wait_ready(service: Running) -> None:
    deadline = time.monotonic() + READY_WITHIN
    last = "no answer"
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            tail = "\n".join(service.log_lines()[-20:])
            pytest.fail(f"{service.name} exited {service.process.returncode}:\n{tail}")
        try:
            response = httpx.get(f"http://127.0.0.1:{service.port}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    pytest.fail(f"{service.name} not ready within {READY_WITHIN} s: {last}")


def test_each_service_is_live_and_ready(hub: dict[str, Running]) -> None:
    for name, service in hub.items():
        health = httpx.get(f"http://127.0.0.1:{service.port}/healthz", timeout=2)
        assert health.json() == {"status": "ok", "service": name}
        ready = httpx.get(f"http://127.0.0.1:{service.port}/readyz", timeout=2).json()
        assert ready["checks"] == {"redis": True, "kafka": True}


def test_every_log_line_is_a_json_object(hub: dict[str, Running]) -> None:
    for name, service in hub.items():
        lines = service.log_lines()
        assert lines, f"{name} logged nothing"
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"{name} logged a line that is not JSON: {line!r}")
        assert all(isinstance(record, dict) for record in records)
        started = [record for record in records if record.get("event") == "service started"]
        assert started
        assert started[0]["service"] == name
        assert started[0]["environment"] == "production"


def module_settings(hub_env: dict[str, str]) -> HubSettings:
    """The services' topics and keys, for writing into an outbox and reading a topic here."""
    return HubSettings(
        kafka_bootstrap=hub_env["KANALHUB_KAFKA_BOOTSTRAP"],
        redis_url=hub_env["KANALHUB_REDIS_URL"],
        topic_suffix=hub_env["KANALHUB_TOPIC_SUFFIX"],
        key_prefix=hub_env["KANALHUB_KEY_PREFIX"],
        environment=Environment.TEST,
    )


async def write_to_mobile_outbox(settings: HubSettings, event: CloudEvent) -> None:
    """What the mobile service does when it changes state: the event goes into its outbox."""
    redis = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        await Outbox(redis, settings, "mobile").publish(event)
    finally:
        await redis.aclose()


async def mobile_outbox_depth(settings: HubSettings) -> int:
    redis = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        return await Outbox(redis, settings, "mobile").depth()
    finally:
        await redis.aclose()


async def find_on_topic(settings: HubSettings, event: CloudEvent, within: float) -> ConsumerRecord:
    """The record of ``event`` on its topic; fails after ``within`` seconds."""
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.MOBILE),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for records in batch.values() for r in records):
                if json.loads(record.value or b"{}").get("id") == str(event.id):
                    return record
    finally:
        await consumer.stop()
    pytest.fail(f"event {event.id} did not reach {settings.topic(Topic.MOBILE)} in {within} s")


async def test_one_event_goes_from_the_outbox_to_its_topic(
    hub: dict[str, Running], hub_env: dict[str, str]
) -> None:
    settings = module_settings(hub_env)
    event = contact_recorded(visit_id=f"visit-{uuid4().hex[:8]}")
    # The mobile service's relay, running in its own process, publishes it to Kafka.
    await write_to_mobile_outbox(settings, event)
    record = await find_on_topic(settings, event, within=20)
    assert record.key == event.subject.encode()
    assert dict(record.headers)["ce_type"] == event.type.encode()
    async with httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{hub['mobile'].port}/metrics"
        assert (await client.get(url)).status_code == 401  # production: no token, no scrape
        scrape = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
        # The relay counts an event once the broker's acknowledgement is stored in Redis,
        # a moment after the record is readable: a loaded CI scraped in between.
        deadline = time.monotonic() + 10
        while True:
            exposition = (await client.get(url, headers=scrape)).text
            if f'type="{event.type}"' in exposition or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert f'type="{event.type}"' in exposition
    assert "kanalhub_events_published_total{" in exposition


def test_sigterm_stops_every_service_cleanly_within_10_seconds(
    hub: dict[str, Running], hub_env: dict[str, str]
) -> None:
    settings = module_settings(hub_env)
    last = contact_recorded(visit_id=f"visit-{uuid4().hex[:8]}")
    asyncio.run(write_to_mobile_outbox(settings, last))  # in flight when SIGTERM comes
    started = time.monotonic()
    for service in hub.values():
        service.process.send_signal(signal.SIGTERM)
    for name, service in hub.items():
        remaining = max(0.1, STOP_WITHIN - (time.monotonic() - started))
        try:
            code = service.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running {STOP_WITHIN} s after SIGTERM")
        assert code == 0, f"{name} exited {code}:\n" + "\n".join(service.log_lines()[-20:])
        events = [json.loads(line).get("event") for line in service.log_lines()]
        assert "service stopped" in events, f"{name} did not log its shutdown"
        assert "background task did not stop" not in events
    # The relay drained the outbox before the process ended: the last event is on the topic.
    assert asyncio.run(mobile_outbox_depth(settings)) == 0
    asyncio.run(find_on_topic(settings, last, within=10))


def test_production_refuses_the_development_secret(tmp_path: Path) -> None:
    log = tmp_path / "kvik.log"
    env = production_env(KANALHUB_JWT_SECRET=DEVELOPMENT_JWT_SECRET)
    process = serve("kvik", env, log)
    code = process.wait(timeout=30)
    output = log.read_text(encoding="utf-8")
    assert code != 0
    assert "refusing to start" in output
    assert "refuses this KANALHUB_JWT_SECRET" in output
    assert "development secret" in output
    assert "Traceback" not in output
