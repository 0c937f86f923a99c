"""Backoff delays grow, stay capped and start over after a success."""

from __future__ import annotations

from services.plumbing.backoff import Backoff


def test_delays_grow_until_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for ceiling in ceilings:
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling


def test_reset_starts_over_from_the_initial_delay() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.5
