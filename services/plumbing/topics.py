"""Explicit topic bootstrap: every topic of the contract is created with a known partition count.

Auto-create is never relied on: an auto-created topic gets the broker's default partition count,
which silently caps how far a consumer group can scale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from services.contracts import Topic
from services.plumbing.kafka_security import kafka_client_options
from services.plumbing.logging import get_logger
from services.plumbing.settings import HubSettings

log = get_logger(__name__)


def contract_topics(settings: HubSettings) -> list[str]:
    """The real names of all topics of the contract (with the test suffix, if any)."""
    return [settings.topic(topic) for topic in Topic]


async def ensure_topics(settings: HubSettings, names: Iterable[str] | None = None) -> list[str]:
    """Create the missing topics; return the names created. Safe to call from every replica."""
    wanted = list(names) if names is not None else contract_topics(settings)
    timeout = settings.kafka_timeout_seconds
    admin = AIOKafkaAdminClient(
        **kafka_client_options(settings),
        request_timeout_ms=int(timeout * 1000),
        client_id="kanalhub-topics",
    )
    await asyncio.wait_for(admin.start(), timeout)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout))
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        response = await asyncio.wait_for(
            admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication,
                    )
                    for name in missing
                ]
            ),
            timeout,
        )
        created = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
                continue
            error = for_code(code)
            # Another replica created it between our list and our create: that is success.
            if error is TopicAlreadyExistsError:
                continue
            raise error(f"could not create topic {name}")
        if created:
            log.info("topics created", topics=created, partitions=settings.topic_partitions)
        return created
    finally:
        await admin.close()


async def topic_partitions(settings: HubSettings, names: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the topics ``names`` (a topic that does not exist has none).

    Asked of the cluster by name through the admin client: a consumer's ``topics()`` answers
    from metadata it does not keep, and Apache Kafka 4 names no topics in the metadata a client
    bootstraps with, so ``partitions_for_topic`` would know none.
    """
    wanted = list(names)
    timeout = settings.kafka_timeout_seconds
    admin = AIOKafkaAdminClient(
        **kafka_client_options(settings),
        request_timeout_ms=int(timeout * 1000),
        client_id="kanalhub-topics",
    )
    await asyncio.wait_for(admin.start(), timeout)
    try:
        described = await asyncio.wait_for(admin.describe_topics(wanted), timeout)
    finally:
        await admin.close()
    found: list[TopicPartition] = []
    for topic in described:
        if topic["error_code"] == 0:
            found += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return sorted(found)
