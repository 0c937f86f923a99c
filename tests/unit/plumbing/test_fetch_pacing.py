"""The fetch pause never delays a fetch that is being cancelled (aiokafka closing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.plumbing.fetch_pacing import FetchPacingUnavailable, pace_empty_fetches


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


class FakeChangedFetcher:
    """Stands in for an aiokafka whose fetcher no longer has the coroutine pacing wraps."""

    async def _fetch_requests_routine(self) -> None:
        return None


def test_pacing_an_aiokafka_whose_internals_changed_fails_loudly() -> None:
    consumer = FakeConsumer()
    consumer._fetcher = FakeChangedFetcher()  # type: ignore[assignment]
    with pytest.raises(FetchPacingUnavailable, match="KANALHUB_EMPTY_FETCH_PAUSE_SECONDS=0"):
        pace_empty_fetches(consumer)  # type: ignore[arg-type]


def test_pacing_the_installed_aiokafka_finds_what_it_wraps() -> None:
    # The real class, not a fake: an aiokafka upgrade that drops the coroutine fails here.
    from aiokafka.consumer.fetcher import Fetcher

    assert asyncio.iscoroutinefunction(Fetcher._proc_fetch_request)
