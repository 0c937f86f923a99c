"""`kanalhub run` keeps itself up: a crashed broker, Valkey or service is restarted with backoff
while the rest waits, the books still balance, and a child that keeps failing is left stopped."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from services.contracts.geography import COPENHAGEN
from services.hub.embedded import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("registry", "kvik", "mobile", "metrics")
RESTART_LIMIT = 5


@dataclass
class Hub:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    output: Path
    var: Path

    def text(self) -> str:
        return self.output.read_text()

    def token(self, role: str) -> str:
        variable = f"KANALHUB_TOKEN_{role.upper().replace(':', '_')}="
        for line in (self.var / "dev-tokens.env").read_text().splitlines():
            if variable in line:
                return line.split("=", 1)[1]
        raise AssertionError(f"no {role} token:\n{self.text()}")

    def child(self, matches: Callable[[list[str]], bool]) -> psutil.Process:
        found = [c for c in psutil.Process(self.process.pid).children() if matches(c.cmdline())]
        assert len(found) == 1, [c.cmdline() for c in found]
        return found[0]


@pytest.fixture
def hub(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Hub]:
    """``kanalhub run`` with short restart delays; ``indirect`` parametrization picks the broker
    (default: the launcher's)."""
    broker = getattr(request, "param", None)
    ports = {name: free_port() for name in ("broker", "valkey", *SERVICES)}
    env = dict(os.environ)
    env.update(
        {
            "KANALHUB_EMBEDDED_DATA_DIR": str(tmp_path / "var"),
            "KANALHUB_EMBEDDED_BROKER_PORT": str(ports["broker"]),
            "KANALHUB_EMBEDDED_VALKEY_PORT": str(ports["valkey"]),
            # short backoff and a small bound, so a crash loop ends within the test
            "KANALHUB_EMBEDDED_RESTART_DELAY_SECONDS": "0.3",
            "KANALHUB_EMBEDDED_RESTART_MAX_DELAY_SECONDS": "2",
            "KANALHUB_EMBEDDED_RESTART_LIMIT": str(RESTART_LIMIT),
            **{f"KANALHUB_{name.upper()}_PORT": str(ports[name]) for name in SERVICES},
            "COLUMNS": "200",
        }
    )
    if broker is not None:
        env["KANALHUB_EMBEDDED_BROKER"] = broker
    output = tmp_path / "hub.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.hub.cli", "run"],
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    hub = Hub(process, ports, output, tmp_path / "var")
    yield hub
    if process.poll() is None:
        process.kill()
        process.wait()


def _readiness(hub: Hub, timeout: float = 5.0) -> dict[str, int | None]:
    """Each service's /readyz status at about the same moment (None: no answer in time)."""

    def ask(name: str) -> int | None:
        try:
            url = f"http://127.0.0.1:{hub.ports[name]}/readyz"
            return httpx.get(url, timeout=timeout).status_code
        except httpx.HTTPError:
            return None

    with ThreadPoolExecutor(len(SERVICES)) as pool:
        return dict(zip(SERVICES, pool.map(ask, SERVICES), strict=True))


def _wait_ready(hub: Hub, within: float) -> float:
    started = time.monotonic()
    while set(_readiness(hub).values()) != {200}:
        assert hub.process.poll() is None, f"the hub exited:\n{hub.text()}"
        assert time.monotonic() - started < within, f"not ready in {within} s:\n{hub.text()}"
        time.sleep(0.2)
    return time.monotonic() - started


def _crash(hub: Hub, child: psutil.Process) -> float:
    """SIGKILL a child; seconds until every /readyz answers 200 again."""
    child.kill()
    return _wait_ready(hub, within=90)


def _post_intake(hub: Hub, day: dt.date, district: str, contacts: int) -> None:
    response = _send_intake(hub, day, district, contacts)
    assert response.status_code == 202, response.text


def _send_intake(hub: Hub, day: dt.date, district: str, contacts: int) -> httpx.Response:
    body = {
        "source": "digital_platform",
        "day": day.isoformat(),
        "items": [
            {"district": district, "service": "passport", "self_service": contacts, "assisted": 0}
        ],
    }
    response = httpx.post(
        f"http://127.0.0.1:{hub.ports['metrics']}/intake",
        json=body,
        headers={"Authorization": f"Bearer {hub.token('metrics:ingest')}"},
        timeout=10,
    )
    return response


def _digital_contacts(hub: Hub, day: dt.date) -> Any:
    response = httpx.get(
        f"http://127.0.0.1:{hub.ports['metrics']}/share",
        params={"period": "day", "date": day.isoformat()},
        headers={"Authorization": f"Bearer {hub.token('metrics:read')}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["channels"]["digital"]["self_service"]


# A restarted Apache Kafka node must reuse its formatted data directory.
KAFKA_CONSUMER_HANG = pytest.mark.xfail(
    reason="on Apache Kafka the metrics consumer's reconnect after the broker outage hangs "
    "(no 'consumer started' after 'consumer lost the broker'; /readyz stays 200): a plumbing "
    "bug found by this test, issue 15 item 5 report",
    strict=False,
)


# The Apache Kafka case is in the fault suite (make test-faults): it takes over a minute and
# is an expected failure until the consumer's reconnect is fixed.
@pytest.mark.parametrize(
    "hub",
    ["noida", pytest.param("kafka", marks=[KAFKA_CONSUMER_HANG, pytest.mark.faults])],
    indirect=True,
)
def test_each_crashed_child_is_restarted_and_the_books_balance(hub: Hub) -> None:
    _wait_ready(hub, within=90)
    deadline = time.monotonic() + 10
    while "Ctrl-C" not in hub.text():  # the supervision loop runs once the welcome is printed
        assert time.monotonic() < deadline, hub.text()
        time.sleep(0.2)
    day = dt.datetime.now(COPENHAGEN).date() - dt.timedelta(days=1)
    # metrics refuses (422) a service it has not yet copied from the registry's seed
    deadline = time.monotonic() + 60
    while (first := _send_intake(hub, day, "valby", 1)).status_code != 202:
        assert first.status_code == 422, first.text
        assert time.monotonic() < deadline, first.text
        time.sleep(0.3)
    broker = hub.child(lambda cmd: any("noida-db" in a or a == "kafka.Kafka" for a in cmd))
    valkey = hub.child(lambda cmd: any("valkey-server" in a for a in cmd))
    kvik = hub.child(lambda cmd: cmd[-2:] == ["serve", "kvik"])
    # Keep the broker down 2 s (its restarts fail on the taken port, within the bound: 5
    # restarts take at least 3 s with these delays):
    # the services stay up, say so on /readyz, and take writes into their outboxes.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    broker.kill()
    broker.wait(5)
    blocker.bind(("127.0.0.1", hub.ports["broker"]))
    blocker.listen()
    threading.Timer(2.0, blocker.close).start()
    time.sleep(0.5)  # the services notice a lost broker within a few tenths of a second
    # 503, or no answer within 1 s: the held port accepts connections but never replies
    assert 200 not in _readiness(hub, timeout=1.0).values()
    _post_intake(hub, day, "osterbro", 10)
    recovery = {"broker (port held 2 s)": _wait_ready(hub, within=90)}
    recovery["valkey"] = _crash(hub, valkey)
    _post_intake(hub, day, "norrebro", 100)
    recovery["kvik"] = _crash(hub, kvik)
    _post_intake(hub, day, "vanlose", 1000)

    deadline = time.monotonic() + 30
    while (counted := _digital_contacts(hub, day)) != 1111:
        assert counted < 1111, counted  # never counted twice
        assert time.monotonic() < deadline, (
            f"counted {counted} of 1111:\n{hub.text()}\nmetrics log:\n"
            + (hub.var / "logs" / "metrics.log").read_text()[-6000:]
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while "kvik is back" not in hub.text():  # printed at the launcher's next check
        assert time.monotonic() < deadline, hub.text()
        time.sleep(0.2)
    text = hub.text()
    for name in ("valkey", "kvik"):
        assert f"{name} exited with code -9; restarting in" in text
        assert f"{name} restarted (1 of at most {RESTART_LIMIT})" in text
        assert f"{name} is back" in text
    assert "exited unexpectedly" not in text
    # the restarted service appended to its log, after the first run's output
    assert (hub.var / "logs" / "kvik.log").read_text().count("=== kanalhub starting kvik") == 2
    print(f"\nall four /readyz 200 again after a SIGKILL of: {recovery}")

    hub.process.send_signal(signal.SIGINT)
    assert hub.process.wait(timeout=60) == 0, hub.text()


def test_a_service_that_fails_at_once_every_time_is_left_stopped_and_the_rest_runs_on(
    hub: Hub,
) -> None:
    _wait_ready(hub, within=90)
    deadline = time.monotonic() + 10
    while "Ctrl-C" not in hub.text():
        assert time.monotonic() < deadline, hub.text()
        time.sleep(0.2)
    mobile = hub.child(lambda cmd: cmd[-2:] == ["serve", "mobile"])
    with socket.socket() as blocker:
        # Taking mobile's port makes every restart fail at once.
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mobile.kill()
        mobile.wait(5)
        blocker.bind(("127.0.0.1", hub.ports["mobile"]))
        blocker.listen()
        deadline = time.monotonic() + 20
        while "left stopped" not in hub.text():
            assert hub.process.poll() is None, hub.text()
            assert time.monotonic() < deadline, hub.text()
            time.sleep(0.2)
        text = hub.text()
        assert "mobile could not be started again" in text
        assert f"restarted {RESTART_LIMIT} times already, left stopped" in text
        assert "mobile keeps failing and is left stopped" in text
        time.sleep(1)
        assert hub.process.poll() is None  # the hub stays up without mobile
        readiness = _readiness(hub)
        assert {name: readiness[name] for name in ("registry", "kvik", "metrics")} == {
            "registry": 200,
            "kvik": 200,
            "metrics": 200,
        }
    hub.process.send_signal(signal.SIGINT)
    assert hub.process.wait(timeout=60) == 0, hub.text()
