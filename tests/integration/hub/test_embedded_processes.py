"""The life of the embedded child processes: start, answer, stop, crash, restart.

Every test starts processes of its own (not the session ``broker``/``valkey``), because it
stops or kills them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.hub.embedded import (
    BROKER_KINDS,
    BrokerKind,
    ManagedProcess,
    PortInUseError,
    ProcessStartError,
    RestartWithBackoff,
    ValkeyProcess,
    free_port,
    make_broker,
    port_in_use,
)
from services.plumbing.backoff import Backoff

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (a child and whatever it forked)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that something else already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_broker_starts_answers_kafka_metadata_and_stops(kind: BrokerKind, tmp_path: Path) -> None:
    broker = make_broker(kind, free_port(), tmp_path)
    broker.start()
    try:
        assert broker.is_running
        assert broker.probe()  # a Kafka metadata request is answered
    finally:
        broker.stop()
    assert not broker.is_running
    assert not port_in_use(broker.host, broker.port)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_broker_stop_leaves_no_process_behind(kind: BrokerKind, tmp_path: Path) -> None:
    broker = make_broker(kind, free_port(), tmp_path)
    broker.start()
    pid = broker.pid
    assert pid is not None
    broker.stop()
    assert not alive(pid)
    assert group_members(pid) == []


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_broker_on_a_taken_port_raises_port_in_use_not_a_child_traceback(
    kind: BrokerKind, tmp_path: Path, listening: int
) -> None:
    broker = make_broker(kind, listening, tmp_path)
    with pytest.raises(PortInUseError, match=f"port {listening} on 127.0.0.1 is already in use"):
        broker.start()
    assert broker.pid is None


def test_valkey_starts_answers_ping_and_stops_leaving_no_process(tmp_path: Path) -> None:
    valkey = ValkeyProcess(port=free_port(), data_dir=tmp_path)
    valkey.start()
    pid = valkey.pid
    assert pid is not None
    assert valkey.probe()
    valkey.stop()
    assert not alive(pid)
    assert group_members(pid) == []
    assert "ready to exit" in valkey.log_path.read_text()  # a clean shutdown, AOF fsynced


def test_valkey_on_a_taken_port_raises_port_in_use(tmp_path: Path, listening: int) -> None:
    with pytest.raises(PortInUseError, match="KANALHUB_EMBEDDED_VALKEY_PORT"):
        ValkeyProcess(port=listening, data_dir=tmp_path).start()


def test_stop_is_idempotent(tmp_path: Path) -> None:
    valkey = ValkeyProcess(port=free_port(), data_dir=tmp_path)
    valkey.stop()  # never started
    valkey.start()
    valkey.stop()
    valkey.stop()
    assert not valkey.is_running


def test_a_child_that_exits_while_starting_raises_with_its_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="doomed",
        host="127.0.0.1",
        port=free_port(),
        data_dir=tmp_path,
        command=[sys.executable, "-c", "print('cannot open the data dir'); raise SystemExit(3)"],
    )
    with pytest.raises(ProcessStartError, match="code 3") as error:
        process.start(timeout=10)
    assert "cannot open the data dir" in str(error.value)


def test_a_child_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="silent",
        host="127.0.0.1",
        port=free_port(),
        data_dir=tmp_path,
        command=[sys.executable, "-c", "import time; time.sleep(60)"],
    )
    with pytest.raises(ProcessStartError, match="did not answer"):
        process.start(timeout=1)
    assert not process.is_running


def _client(tmp_path: Path, code: str) -> ManagedProcess:
    """A child that listens on nothing, running ``code``."""
    return ManagedProcess(
        name="client",
        host="127.0.0.1",
        port=None,
        data_dir=tmp_path,
        command=[sys.executable, "-c", code],
    )


def test_a_client_without_a_port_starts_beside_any_listener_and_stops(
    tmp_path: Path, listening: int
) -> None:
    # The launcher's simulator once took the kvik port as its own and refused to start.
    process = _client(tmp_path, "import time; time.sleep(60)")
    process.start(timeout=5)  # ready once it runs: there is nothing to probe
    pid = process.pid
    assert pid is not None
    assert process.is_running
    assert process.exit_code is None
    process.stop()
    assert group_members(pid) == []


def _supervise(supervisor: RestartWithBackoff, within: float = 20.0) -> list[str]:
    """Call ``check`` as the launcher's loop does until the supervisor settles; its messages."""
    messages: list[str] = []
    deadline = time.monotonic() + within
    while not supervisor.settled:
        assert time.monotonic() < deadline, messages
        message = supervisor.check()
        if message is not None:
            messages.append(message)
        time.sleep(0.02)
    return messages


def test_a_failing_client_is_restarted_with_backoff_then_left_stopped(tmp_path: Path) -> None:
    process = _client(tmp_path, "print('run', flush=True); raise SystemExit(3)")
    supervisor = RestartWithBackoff(process, restarts=2, backoff=Backoff(0.05, 0.1))
    supervisor.start()
    messages = _supervise(supervisor)
    assert supervisor.restarted == 2
    assert process.log_path.read_text().count("run\n") == 3  # the first start and 2 restarts
    assert [m.split(";")[0] for m in messages] == [
        "client exited with code 3",
        "client restarted (1 of at most 2)",
        "client exited with code 3",
        "client restarted (2 of at most 2)",
        "client exited with code 3",
    ]
    assert "left stopped" in messages[-1]
    assert supervisor.check() is None  # settled: nothing more happens


def test_a_client_that_finishes_is_not_restarted(tmp_path: Path) -> None:
    process = _client(tmp_path, "print('done', flush=True)")
    supervisor = RestartWithBackoff(process, restarts=2, backoff=Backoff(0.05, 0.1))
    supervisor.start()
    messages = _supervise(supervisor)
    assert supervisor.restarted == 0
    assert len(messages) == 1
    assert messages[0].startswith("client finished")


def test_a_server_that_exits_with_0_is_restarted_and_its_recovery_reported(
    tmp_path: Path,
) -> None:
    # A server (broker, Valkey, service) runs as long as the hub: even a clean exit is a crash.
    process = _client(tmp_path, "print('run', flush=True)")
    supervisor = RestartWithBackoff(
        process, restarts=1, backoff=Backoff(0.05, 0.1), finished_on_success=False
    )
    supervisor.start()
    messages = _supervise(supervisor)
    assert [m.split(";")[0] for m in messages] == [
        "client exited with code 0",
        "client restarted (1 of at most 1)",
        "client exited with code 0",
    ]
    assert supervisor.left_stopped


def test_a_restarted_server_is_reported_back_once_it_answers(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import socket, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(30)\n"
    )
    process = ManagedProcess("server", "127.0.0.1", port, tmp_path, [sys.executable, "-c", code])
    supervisor = RestartWithBackoff(
        process, restarts=1, backoff=Backoff(0.05, 0.1), finished_on_success=False
    )
    try:
        supervisor.start()
        process.wait_ready(10)
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)  # a crash, not kill(): that is a stop on purpose
        messages: list[str] = []
        deadline = time.monotonic() + 15
        while not any("is back" in m for m in messages):
            assert time.monotonic() < deadline, messages
            if (message := supervisor.check()) is not None:
                messages.append(message)
            time.sleep(0.02)
    finally:
        process.stop()
    assert messages[1] == "server restarted (1 of at most 1)"
    assert supervisor.recovery_seconds is not None
    assert supervisor.recovery_seconds < 10


def test_a_restarted_server_is_well_again_after_staying_up(tmp_path: Path) -> None:
    now = [0.0]
    process = _client(tmp_path, "import time; time.sleep(30)")
    supervisor = RestartWithBackoff(
        process,
        restarts=1,
        backoff=Backoff(0.05, 0.1),
        clock=lambda: now[0],
        finished_on_success=False,
        stable_after=60,
    )
    try:
        supervisor.start()
        supervisor.restarted = 1  # as after a crash; now up again
        now[0] = 59
        supervisor.check()
        assert supervisor.restarted == 1
        now[0] = 61
        supervisor.check()
        assert supervisor.restarted == 0  # a later crash starts a fresh loop
    finally:
        process.stop()


def _wait_for_log(process: ManagedProcess, text: str, times: int) -> None:
    deadline = time.monotonic() + 10
    while process.log_path.read_text().count(text) < times:
        assert time.monotonic() < deadline, process.log_path.read_text()
        time.sleep(0.02)


def test_logs_of_earlier_runs_are_rotated_and_restarts_append(tmp_path: Path) -> None:
    for run in range(5):
        process = _client(tmp_path, f"import time; print('run {run}', flush=True); time.sleep(30)")
        for times in (1, 2):  # the start, then a restart within the same run, which appends
            process.launch()
            _wait_for_log(process, f"run {run}\n", times)
            process.stop()
    assert process.log_path.read_text().count("run 4\n") == 2
    kept = {n: process.log_path.with_name(f"client.log.{n}").read_text() for n in (1, 2, 3)}
    assert [text.count(f"run {4 - n}\n") for n, text in kept.items()] == [2, 2, 2]
    assert not process.log_path.with_name("client.log.4").exists()


def test_children_die_when_the_launcher_is_sigkilled(tmp_path: Path) -> None:
    launcher_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from services.hub.embedded import ValkeyProcess, free_port\n"
        "valkey = ValkeyProcess(port=free_port(), data_dir=Path(sys.argv[1]))\n"
        "valkey.start()\n"
        "print(valkey.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        child = int(launcher.stdout.readline())
        assert alive(child)
        launcher.kill()  # no finally, no atexit: only the kernel can tell the child
        launcher.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        launcher.kill()


async def test_valkey_keeps_every_acknowledged_write_across_a_sigkill(tmp_path: Path) -> None:
    valkey = ValkeyProcess(port=free_port(), data_dir=tmp_path)
    valkey.start()
    client = Redis.from_url(valkey.url, socket_timeout=5)
    try:
        for i in range(2000):
            assert await client.set(f"key:{i}", i)  # each SET acknowledged before the next
    finally:
        await client.aclose()
    valkey.kill()  # SIGKILL: no shutdown, no final fsync

    restarted = ValkeyProcess(port=valkey.port, data_dir=tmp_path)
    restarted.start()
    client = Redis.from_url(restarted.url, socket_timeout=5)
    try:
        values = await client.mget([f"key:{i}" for i in range(2000)])
        assert values == [str(i).encode() for i in range(2000)]
    finally:
        await client.aclose()
        restarted.stop()


async def test_a_broker_restarted_by_the_same_object_answers_again(tmp_path: Path) -> None:
    broker = make_broker("noida", free_port(), tmp_path)
    broker.start()
    try:
        broker.kill()
        assert not broker.is_running
        broker.start()
        assert await asyncio.to_thread(broker.probe)
    finally:
        broker.stop()


async def test_valkey_runs_with_an_aof_fsynced_before_each_reply(tmp_path: Path) -> None:
    valkey = ValkeyProcess(port=free_port(), data_dir=tmp_path)
    valkey.start()
    client = Redis.from_url(valkey.url, socket_timeout=5)
    try:
        config = await client.config_get("*")
    finally:
        await client.aclose()
        valkey.stop()
    # A SIGKILL test alone cannot tell "always" from "no" (the kernel has the write either
    # way); the running configuration can.
    assert (config["appendonly"], config["appendfsync"], config["save"]) == ("yes", "always", "")
