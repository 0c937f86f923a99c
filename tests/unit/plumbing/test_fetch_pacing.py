"""The fetch pause never delays a fetch that is being cancelled (aiokafka closing)."""

from __future__ import annotations

import asyncio
from typing import Any

from services.plumbing.fetch_pacing import pace_empty_fetches


class FakeFetcher:
    """Stands in for aiokafka's Fetcher: its fetch coroutine, like aiokafka's, answers a cancel
    during the request with False instead of raising."""

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return False
        return True


class FakeConsumer:
    def __init__(self) -> None:
        self._fetcher = FakeFetcher()


async def test_a_cancelled_empty_fetch_returns_at_once_instead_of_pausing() -> None:
    consumer = FakeConsumer()
    pace_empty_fetches(consumer, pause=30.0)  # type: ignore[arg-type]
    task = asyncio.create_task(consumer._fetcher._proc_fetch_request(None, 1, None))
    await asyncio.sleep(0.01)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done
    assert task.result() is False
