"""A consumer process that dies (``os._exit``) right after storing a batch, before committing.

Run by test_consumer_crash.py as a real child process, so "killed" means a process that ended
without any cleanup: no commit, no LeaveGroup, no flush. Only the commit step is replaced;
decode, dedupe, handler and storage are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.contracts import CloudEvent, EventType
from services.plumbing.consumer import EventConsumer, Transaction
from services.plumbing.outbox import Outbox
from services.plumbing.producer import EventProducer
from services.plumbing.runtime import connect_redis
from services.plumbing.settings import HubSettings, ServiceSettings


class ProbeSettings(ServiceSettings):
    service = "probe"


class DiesBeforeCommit(EventConsumer):
    async def commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        print(f"stored up to {offset}, dying before commit", flush=True)
        os._exit(137)


async def main(settings_json: str) -> None:
    hub = HubSettings.model_validate_json(settings_json)
    settings = ProbeSettings(hub=hub)
    redis = connect_redis(settings)
    producer = EventProducer(hub, client_id="crashing-consumer")
    await producer.start()
    effects_key = hub.key("probe", "effects")

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        tx.pipe.hincrby(effects_key, str(event.id), 1)

    consumer = DiesBeforeCommit(
        settings=hub,
        service="probe",
        group_id=settings.consumer_group,
        redis=redis,
        producer=producer,
        outbox=Outbox(redis, hub, "probe"),
        handlers={EventType.MOBILE_CONTACT_RECORDED: handle},
        session_timeout_ms=6000,
    )
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
