"""A consumer's start and stop are bounded even when the library ignores the cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.plumbing.consumer import within


async def _deaf(seconds: float) -> None:
    """Stands in for aiokafka's stop waiting on its coordinator: it swallows cancels."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue


async def test_a_step_that_ignores_its_cancel_is_abandoned_at_the_bound() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"consumer stop did not finish within 0\.2 s"):
        await within(_deaf(3.0), 0.2, "consumer stop")
    # asyncio.wait_for would have waited the whole 3 s for the deaf step to end
    assert time.monotonic() - started < 1.5


async def test_a_step_that_ends_in_time_returns_and_its_error_is_raised() -> None:
    await within(asyncio.sleep(0.01), 1.0, "quick")

    async def failing() -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError, match="broker gone"):
        await within(failing(), 1.0, "failing")
