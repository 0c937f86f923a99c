"""Session fixtures shared by every test: the real embedded broker and Valkey, started on demand.

Nothing starts at import time: the broker and Valkey start the first time a test asks for them
(directly, or through ``hub_settings``/``redis_client``), once per test session, on free ports
with data in pytest's temporary directory, and they are stopped when the session ends. Unit
tests that ask for none of these never start a process.

The integration tests run on Apache Kafka (KRaft, one node, started by
``services/hub/apache_kafka.py`` from Maven Central artifacts; the first run downloads them).
``KANALHUB_TEST_BROKER=noida`` (or ``tansu``) runs them on an embedded broker of that kind, with
the workarounds that broker needs (``KafkaBroker.client_settings``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from services.hub.embedded import (
    BROKER_KINDS,
    REFERENCE_BROKER,
    KafkaBroker,
    ManagedProcess,
    ValkeyProcess,
    free_port,
    make_broker,
)
from services.plumbing.settings import Environment, HubSettings


def _start_or_fail(process: ManagedProcess, what: str) -> None:
    # Integration tests need the real component: a start failure fails them with the reason
    # (and the child's log) instead of skipping them, so a broken install cannot look green.
    try:
        process.start()
    except Exception as error:
        pytest.fail(f"could not start {what} for the integration tests: {error}", pytrace=False)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """The session's broker: Apache Kafka (``REFERENCE_BROKER``) unless ``KANALHUB_TEST_BROKER``
    names another kind."""
    kind = os.environ.get("KANALHUB_TEST_BROKER", REFERENCE_BROKER)
    if kind not in BROKER_KINDS:
        pytest.fail(
            f"KANALHUB_TEST_BROKER={kind!r}: choose one of {', '.join(BROKER_KINDS)}",
            pytrace=False,
        )
    process = make_broker(kind, free_port(), tmp_path_factory.mktemp(f"broker-{kind}"))
    _start_or_fail(process, f"the {kind} broker")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyProcess]:
    """A Valkey server (AOF, ``appendfsync always``) on a free port, for the whole session."""
    process = ValkeyProcess(port=free_port(), data_dir=tmp_path_factory.mktemp("valkey"))
    _start_or_fail(process, "Valkey")
    yield process
    process.stop()


@pytest.fixture
def hub_settings(broker: KafkaBroker, valkey: ValkeyProcess) -> HubSettings:
    """Settings for the session broker and Valkey, with topics and keys of this test only."""
    return HubSettings(
        kafka_bootstrap=broker.bootstrap,
        redis_url=valkey.url,
        topic_suffix=f".t{uuid4().hex[:10]}",
        key_prefix=f"test{uuid4().hex[:10]}",
        topic_partitions=3,
        environment=Environment.TEST,
    ).model_copy(update=broker.client_settings())


@pytest.fixture
async def redis_client(valkey: ValkeyProcess) -> AsyncIterator[Redis]:
    """An asyncio redis-py client of the session Valkey, closed after the test."""
    client = Redis.from_url(valkey.url, socket_timeout=5)
    yield client
    await client.aclose()
