"""`kanalhub run`: the whole hub as separate processes, started and stopped like a user would."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from services.contracts.geography import COPENHAGEN
from services.hub.embedded import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("registry", "kvik", "mobile", "metrics")


@dataclass
class Hub:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    output: Path

    def text(self) -> str:
        return self.output.read_text()


def _start_hub(tmp_path: Path, ports: dict[str, int], *options: str) -> Hub:
    env = dict(os.environ)
    env.update(
        {
            "KANALHUB_EMBEDDED_DATA_DIR": str(tmp_path / "var"),
            "KANALHUB_EMBEDDED_BROKER_PORT": str(ports["broker"]),
            "KANALHUB_EMBEDDED_VALKEY_PORT": str(ports["valkey"]),
            **{f"KANALHUB_{name.upper()}_PORT": str(ports[name]) for name in SERVICES},
            "COLUMNS": "200",
        }
    )
    output = tmp_path / "hub.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.hub.cli", "run", *options],
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    return Hub(process, ports, output)


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("broker", "valkey", *SERVICES)}


@pytest.fixture
def hub(tmp_path: Path, ports: dict[str, int]) -> Iterator[Hub]:
    hub = _start_hub(tmp_path, ports)
    yield hub
    if hub.process.poll() is None:
        hub.process.kill()
        hub.process.wait()


def _all_ready(ports: dict[str, int]) -> bool:
    for name in SERVICES:
        try:
            if httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=1).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


def _wait_ready(hub: Hub, within: float = 60.0) -> float:
    started = time.monotonic()
    while not _all_ready(hub.ports):
        assert hub.process.poll() is None, f"the hub exited early:\n{hub.text()}"
        assert time.monotonic() - started < within, f"not ready within {within} s:\n{hub.text()}"
        time.sleep(0.5)
    return time.monotonic() - started


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _gone(processes: list[psutil.Process], within: float = 15.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=within)
    return alive


def test_run_brings_all_four_services_to_ready_and_ctrl_c_leaves_no_process(hub: Hub) -> None:
    seconds = _wait_ready(hub)
    print(f"all four /readyz answered 200 after {seconds:.1f} s")
    children = _descendants(hub.process.pid)
    assert len(children) >= 6  # broker, valkey and four services
    # Wait for the welcome text, printed right after the readiness check succeeds.
    deadline = time.monotonic() + 10
    while "Ctrl-C" not in hub.text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = hub.text()
    assert "registry:write" in text  # development tokens are printed
    assert f"http://127.0.0.1:{hub.ports['kvik']}/docs" in text

    hub.process.send_signal(signal.SIGINT)
    assert hub.process.wait(timeout=60) == 0, hub.text()
    assert _gone(children) == []
    assert "all stopped" in hub.text()


def test_killed_launcher_takes_its_children_with_it(hub: Hub) -> None:
    _wait_ready(hub)
    children = _descendants(hub.process.pid)
    hub.process.kill()  # SIGKILL: the launcher gets no chance to clean up
    hub.process.wait()
    assert _gone(children) == []


def test_port_in_use_gives_a_clear_message_and_no_traceback(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["kvik"]))
        blocker.listen()
        hub = _start_hub(tmp_path, ports)
        assert hub.process.wait(timeout=60) == 2
    text = hub.text()
    assert f"port {ports['kvik']} for kvik is already in use" in text
    assert "KANALHUB_KVIK_PORT" in text
    assert "Traceback" not in text


def _dev_token(hub: Hub, tmp_path: Path, role: str) -> str:
    """A development token the launcher wrote to ``var/dev-tokens.env``, as a user sources it."""
    variable = f"KANALHUB_TOKEN_{role.upper().replace(':', '_')}="
    for line in (tmp_path / "var" / "dev-tokens.env").read_text().splitlines():
        if variable in line:
            return line.split("=", 1)[1]
    raise AssertionError(f"no {role} token in dev-tokens.env:\n{hub.text()}")


def test_run_simulate_keeps_the_hub_up_and_metrics_counts_every_channel_it_sends(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    started = time.monotonic()
    hub = _start_hub(tmp_path, ports, "--simulate")
    try:
        _wait_ready(hub)
        deadline = time.monotonic() + 30
        while "simulated traffic running" not in hub.text():
            assert hub.process.poll() is None, f"the hub exited:\n{hub.text()}"
            assert time.monotonic() < deadline, f"the simulator never started:\n{hub.text()}"
            time.sleep(0.2)
        token = _dev_token(hub, tmp_path, "metrics:read")
        # The simulator replays 8 weeks of history before going live, oldest day first: the
        # second of those weeks is whole, and must show every channel - the kiosks, both
        # platforms' intake, the centres' desk tickets and the mobile stops' visits.
        second_week = dt.datetime.now(COPENHAGEN).date() - dt.timedelta(weeks=7)
        url = f"http://127.0.0.1:{ports['metrics']}/share"
        params = {"period": "week", "date": second_week.isoformat()}
        channels: dict[str, int] = {}
        deadline = time.monotonic() + 120
        while not channels or min(channels.values()) == 0:
            assert hub.process.poll() is None, f"the hub exited:\n{hub.text()}"
            assert "simulator exited" not in hub.text(), (
                hub.text() + (tmp_path / "var" / "logs" / "simulator.log").read_text()[-4000:]
            )
            assert time.monotonic() < deadline, (
                f"metrics did not count every channel of the simulated traffic: {channels}\n"
                + hub.text()
                + (tmp_path / "var" / "logs" / "simulator.log").read_text()[-4000:]
            )
            response = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            channels = {
                name: counts["self_service"] + counts["assisted"]
                for name, counts in response.json()["channels"].items()
            }
            time.sleep(0.5)
        total = sum(channels.values())
        assert set(channels) == {"digital", "phone", "counter", "kvik", "mobile"}
        children = _descendants(hub.process.pid)
        assert any("simulate" in child.cmdline() for child in children), "no simulator child"
        text = hub.text()
        assert "already in use" not in text
        assert "exited unexpectedly" not in text

        stopping = time.monotonic()
        hub.process.send_signal(signal.SIGINT)
        assert hub.process.wait(timeout=60) == 0, hub.text()
        assert _gone(children) == []
        print(
            f"{total} contacts counted in the second week ({channels}); stopped in "
            f"{time.monotonic() - stopping:.1f} s; {time.monotonic() - started:.1f} s in all"
        )
    finally:
        if hub.process.poll() is None:
            hub.process.kill()
            hub.process.wait()
