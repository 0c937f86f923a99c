"""Keeps an idle consumer from spinning on a broker that answers empty fetches at once.

A Kafka broker holds an empty fetch for up to ``fetch_max_wait_ms`` (500 ms) before it
answers, so an idle consumer sends about two requests a second. The embedded noida broker
answers at once, and aiokafka's fetcher then asks again straight away: measured, an idle
consumer used 0.6 of a core doing nothing (0.007 with a pause), which on a 2-core machine
running four services is most of the machine. aiokafka has no client-side pause for this, so
the fetcher's per-request coroutine is wrapped: a fetch that brought nothing and came back
sooner than ``pause`` is followed by the rest of ``pause``. Against a real broker an empty
fetch takes ``fetch_max_wait_ms`` and nothing changes; a fetch that brought records is never
delayed. The cost is up to ``pause`` of extra latency for the first record after a quiet spell.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

EMPTY_FETCH_PAUSE_SECONDS = 0.05
"""The pause the embedded launcher sets for a broker that answers empty fetches at once."""


class FetchPacingUnavailable(RuntimeError):
    """aiokafka's fetcher lacks the coroutine pacing wraps: its internals changed."""


def pace_empty_fetches(
    consumer: AIOKafkaConsumer, pause: float = EMPTY_FETCH_PAUSE_SECONDS
) -> None:
    """Make a started ``consumer`` wait at least ``pause`` s per fetch that returned nothing.

    Raises :class:`FetchPacingUnavailable` when aiokafka no longer has the part this wraps: a
    broker that needs pacing would otherwise have every idle consumer spin on it unnoticed.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None:
        raise FetchPacingUnavailable("the consumer is not started: start it before pacing it")
    original = getattr(fetcher, "_proc_fetch_request", None)
    if original is None:
        raise FetchPacingUnavailable(
            "aiokafka's fetcher has no _proc_fetch_request any more (its internals changed): "
            "empty-fetch pacing cannot be applied; set KANALHUB_EMPTY_FETCH_PAUSE_SECONDS=0 "
            "(a real Kafka broker needs none) or adapt services/plumbing/fetch_pacing.py"
        )
    if getattr(original, "_kanalhub_paced", False):
        return  # already paced

    async def paced(assignment: Any, node_id: int, request: Any) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        got_records: bool = await original(assignment, node_id, request)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # aiokafka's coroutine took the cancel (it answers False): pausing now would keep
            # the fetcher's routine waiting on this task while it is being closed - and the
            # routine swallows a cancel that arrives while it waits on a task.
            return got_records
        remaining = pause - (loop.time() - started)
        if not got_records and remaining > 0:
            try:
                await asyncio.sleep(remaining)
            except asyncio.CancelledError:
                # As aiokafka's own coroutine does: a cancelled fetch (assignment changed,
                # consumer closing) just reports that it brought nothing.
                return False
        return got_records

    paced._kanalhub_paced = True  # type: ignore[attr-defined]
    fetcher._proc_fetch_request = paced
