"""Benchmarks of the kvik service, one uvicorn process against the real Valkey and broker.

- **single posts**: 50 concurrent kiosks each post finished sessions one by one
  (``POST /sessions``); sessions per second and the latency percentiles a kiosk sees.
- **batch upload**: kiosks coming back online upload backlogs of 1,000 sessions
  (``POST /sessions/batch``); sessions per second.

The service runs in its own process (``uvicorn``, one worker, so at most one core); the load
comes from this process through a minimal keep-alive HTTP/1.1 client (``RawClient``: asyncio
streams, one prepared request per call), because a full client library would spend more CPU
per request than the service and measure itself. Both sides' CPU per session is reported from
``/proc`` (``service_cpu_ms_per_session``, ``client_cpu_ms_per_session``): the service figure
is the one to compare, the client figure shows the load generator is not what limits a run
on a shared host. Every response is checked (201 / 207 with every item 201), so a fast wrong
answer cannot pass as speed.

``python -m bench.kvik`` runs it alone; ``python -m bench.run --suite kvik`` with the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from redis.asyncio import Redis

from bench.plumbing import Result
from bench.stats import percentile
from services.contracts.payloads.registry import EntryUpserted
from services.hub.embedded import free_port
from services.hub.simulator.driver import session_body
from services.hub.simulator.traffic import kiosk_session
from services.kvik.store import KvikStore
from services.plumbing.auth import mint_token
from services.plumbing.outbox import Outbox
from services.plumbing.settings import HubSettings

ENTRY = "kvik-bench"
SERVICES = ("passport", "change_of_address", "health_insurance_card")
CLIENTS = 50
BATCH = 1000


def _entry() -> EntryUpserted:
    return EntryUpserted.model_validate(
        {
            "entry_id": ENTRY,
            "version": 1,
            "site_id": "site-bench",
            "name": "Borgerservice KVIK Bench",
            "kind": "kvik_point",
            "entry_type": "service_and_offers",
            "administration": "okf",
            "coverage": "local",
            "district": "valby",
            "services": list(SERVICES),
            "staff_help": ["video"],
            "status": "open",
            "opening_hours": {"weekly": [], "exceptions": []},
        }
    )


async def seed_registry_copy(redis: Redis, settings: HubSettings) -> None:
    """Write the registry copy the way the consumer's handlers do, without waiting for them."""
    store = KvikStore(redis, settings, Outbox(redis, settings, "kvik"))
    async with redis.pipeline(transaction=True) as pipe:
        await store.apply_entry(pipe, _entry())
        for code in SERVICES:
            await store.apply_service(pipe, code, 1, active=True)
        await pipe.execute()


def session(kiosk: str, index: int, now: dt.datetime, rng: random.Random) -> dict[str, Any]:
    """A finished session from the simulator's generator (the traffic model's mix of
    outcomes and help) at one of the bench entry's services, ended 5-18 minutes ago."""
    started = now - dt.timedelta(minutes=20, seconds=index % 600)
    return session_body(kiosk, kiosk_session(rng, started, SERVICES))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawClient:
    """One keep-alive HTTP/1.1 connection; sends prepared requests and reads whole responses."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``; the status and the response body."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()


def start_service(settings: HubSettings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The kvik service in its own uvicorn process (one worker), configured by environment."""
    env = {
        **os.environ,
        "KANALHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "KANALHUB_REDIS_URL": settings.redis_url,
        "KANALHUB_TOPIC_SUFFIX": settings.topic_suffix,
        "KANALHUB_KEY_PREFIX": settings.key_prefix,
        "KANALHUB_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "KANALHUB_ENVIRONMENT": settings.environment.value,
        "KANALHUB_LOG_LEVEL": "WARNING",
        "KANALHUB_KVIK_RATE_PER_SECOND": "100000",
        "KANALHUB_KVIK_RATE_BURST": "100000",
        "KANALHUB_KVIK_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "services.kvik.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_ready(base: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the kvik service did not start")
            await asyncio.sleep(0.2)


async def _register(base: str, settings: HubSettings, count: int) -> list[tuple[str, str]]:
    admin = {"Authorization": f"Bearer {mint_token(settings, 'bench-admin', ['kvik:admin'])}"}
    kiosks = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for index in range(count):
            response = await client.post(
                "/kiosks",
                json={"kiosk_id": f"kiosk-bench-{index:03d}", "entry_id": ENTRY},
                headers=admin,
            )
            response.raise_for_status()
            kiosks.append((response.json()["kiosk_id"], response.json()["token"]))
    return kiosks


async def single_posts(port: int, kiosks: list[tuple[str, str]], count: int, pid: int) -> Result:
    """``CLIENTS`` kiosks post ``count`` sessions one by one, side by side."""
    now = dt.datetime.now(dt.UTC)
    per_client = max(1, count // len(kiosks))
    latencies: list[float] = []
    retries: list[int] = []

    async def kiosk(kiosk_id: str, token: str) -> None:
        client = RawClient("127.0.0.1", port, token)
        rng = random.Random(kiosk_id)
        bodies = [json.dumps(session(kiosk_id, i, now, rng)).encode() for i in range(per_client)]
        try:
            for body in bodies:
                started = time.perf_counter()
                status, answer = await client.post("/sessions", body)
                while status == 503:  # the store was slow: retry as a kiosk does (idempotent)
                    retries.append(1)
                    await asyncio.sleep(0.05)
                    status, answer = await client.post("/sessions", body)
                latencies.append(time.perf_counter() - started)
                if status != 201 and not (status == 200 and retries):
                    raise RuntimeError(f"POST /sessions answered {status}: {answer[:200]!r}")
        finally:
            await client.close()

    cpu, own = cpu_seconds(pid), cpu_seconds(os.getpid())
    started = time.perf_counter()
    await asyncio.gather(*(kiosk(k, t) for k, t in kiosks))
    elapsed = time.perf_counter() - started
    cpu, own = cpu_seconds(pid) - cpu, cpu_seconds(os.getpid()) - own
    total = per_client * len(kiosks)
    return Result(
        f"kvik single posts ({len(kiosks)} concurrent kiosks)",
        {
            "sessions_per_s": total / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            # What the service process itself spent: independent of other load on the host.
            "service_cpu_ms_per_session": cpu / total * 1000,
            "sessions_per_service_cpu_s": total / cpu if cpu else 0.0,
            # The load generator (this process), to show it is not the bottleneck.
            "client_cpu_ms_per_session": own / total * 1000,
            "retried_503": float(len(retries)),
        },
        unit="sessions/s, ms",
        note=f"{total} sessions; target >= 2,000/s with p99 < 50 ms",
    )


async def batch_upload(
    port: int, kiosks: list[tuple[str, str]], count: int, pid: int, uploaders: int = 4
) -> Result:
    """Kiosks back from offline upload ``count`` sessions in batches of up to 1,000."""
    now = dt.datetime.now(dt.UTC)
    size = min(BATCH, count)
    batches = max(1, count // size)
    chosen = kiosks[:uploaders]
    retries: list[int] = []
    payloads: list[tuple[int, bytes]] = []
    rng = random.Random(BATCH)
    for index in range(batches):
        owner = index % len(chosen)
        kiosk_id = chosen[owner][0]
        items = [session(kiosk_id, index * size + i, now, rng) for i in range(size)]
        payloads.append((owner, json.dumps({"sessions": items}).encode()))

    async def uploader(owner: int) -> None:
        client = RawClient("127.0.0.1", port, chosen[owner][1])
        try:
            for who, body in payloads:
                if who != owner:
                    continue
                status, answer = await client.post("/sessions/batch", body)
                while status == 503:  # the store was slow: send the batch again (idempotent)
                    retries.append(1)
                    await asyncio.sleep(0.05)
                    status, answer = await client.post("/sessions/batch", body)
                result = json.loads(answer)
                if status != 207 or result["created"] + result["replayed"] != size:
                    raise RuntimeError(f"batch answered {status}: {answer[:300]!r}")
        finally:
            await client.close()

    cpu, own = cpu_seconds(pid), cpu_seconds(os.getpid())
    started = time.perf_counter()
    await asyncio.gather(*(uploader(owner) for owner in range(len(chosen))))
    elapsed = time.perf_counter() - started
    cpu, own = cpu_seconds(pid) - cpu, cpu_seconds(os.getpid()) - own
    total = batches * size
    return Result(
        f"kvik batch upload ({size} per request, {len(chosen)} uploaders)",
        {
            "sessions_per_s": total / elapsed,
            "s_per_batch": elapsed / batches,
            "service_cpu_ms_per_session": cpu / total * 1000,
            "sessions_per_service_cpu_s": total / cpu if cpu else 0.0,
            "client_cpu_ms_per_session": own / total * 1000,
            "retried_503": float(len(retries)),
        },
        unit="sessions/s",
        note=f"{batches * size} sessions; target >= 20,000/s",
    )


async def run_all(settings: HubSettings, count: int, scratch: Path) -> list[Result]:
    """Start the service, seed it, run both benchmarks, stop it."""
    redis = Redis.from_url(settings.redis_url)
    try:
        await seed_registry_copy(redis, settings)
    finally:
        await redis.aclose()
    port = free_port()
    process = start_service(settings, port, scratch / "kvik-bench.log")
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_ready(base)
        kiosks = await _register(base, settings, CLIENTS)
        single = await single_posts(port, kiosks, count, process.pid)
        batch = await batch_upload(port, kiosks, count, process.pid)
        return [single, batch]
    except Exception:
        # The service's own log says why it failed; the scratch directory is about to go.
        print((scratch / "kvik-bench.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    """Run the kvik benchmarks alone on fresh embedded components; print the figures."""
    import argparse
    import tempfile

    from services.hub.embedded import DEFAULT_BROKER, ValkeyProcess, make_broker
    from services.plumbing.settings import Environment

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanalhub-bench-kvik-") as raw:
        scratch = Path(raw)
        kind = os.environ.get("KANALHUB_EMBEDDED_BROKER", DEFAULT_BROKER)
        broker = make_broker(kind, free_port(), scratch / "broker")  # type: ignore[arg-type]
        valkey = ValkeyProcess(port=free_port(), data_dir=scratch / "valkey")
        broker.start()
        valkey.start()
        try:
            settings = HubSettings(
                kafka_bootstrap=broker.bootstrap,
                redis_url=valkey.url,
                topic_suffix=f".bench{uuid4().hex[:8]}",
                key_prefix=f"bench{uuid4().hex[:8]}",
                topic_partitions=6,
                environment=Environment.TEST,
            ).model_copy(update=broker.client_settings())
            results = asyncio.run(run_all(settings, args.sessions, scratch))
        finally:
            valkey.stop()
            broker.stop()
    for result in results:
        figures = ", ".join(f"{k}={v:,.1f}" for k, v in result.figures.items())
        print(f"{result.name}: {figures} ({result.note})")


if __name__ == "__main__":
    main()
