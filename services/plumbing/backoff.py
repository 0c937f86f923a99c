"""Capped exponential backoff with full jitter, for loops that retry until a dependency is back."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for successive failures: ``initial * 2**n`` capped at ``maximum``, jittered.

    Jitter spreads the retries of many replicas so a broker coming back is not hit by all of
    them in the same millisecond.
    """

    initial: float = 0.1
    maximum: float = 10.0
    attempts: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with every call until ``reset``."""
        ceiling = min(self.maximum, self.initial * (2**self.attempts))
        self.attempts += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.attempts = 0


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that a library reported as another exception.

    A retry loop catches ``Exception``; redis-py's blocking reads can surface a task's
    cancellation as a ``TimeoutError`` (through async-timeout), and the loop would then retry
    for ever in a task that was asked to stop. Call this first in every such ``except``.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def pause(seconds: float, stopping: asyncio.Event) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
