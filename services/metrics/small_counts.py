"""Small-count suppression on the open dashboard page.

When the built-in page is open to the public (``KANALHUB_METRICS_PUBLIC_PAGE=open``), a count
below the threshold (``KANALHUB_METRICS_PUBLIC_MIN_COUNT``) is shown as ``<10`` and a share
built on fewer contacts than the threshold is not shown at all: a small cell (three phone
contacts from one district in a week) can point at a person, a share of two contacts even more
so. A protected page, the API and Prometheus show every figure as it is (docs/security.md,
"Public surfaces").
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PRODUCTION_MIN_COUNT = 10
"""The threshold of an open page in production when none is configured: the customary
lower bound of published statistics cells (Danmarks Statistik's discretion rules use
thresholds of the same order)."""


@dataclass(frozen=True)
class SmallCounts:
    """The suppression rule of one page render; ``threshold`` 0 shows everything."""

    threshold: int = 0

    def hides(self, count: int) -> bool:
        """Whether ``count`` (or a figure built on that many contacts) is withheld."""
        return count < self.threshold

    def count(self, count: int) -> int | str:
        """``count`` as shown: the number, or ``<threshold`` when it is below the threshold."""
        return f"<{self.threshold}" if self.hides(count) else count

    def share(self, share: float | None, base: int) -> float | None:
        """``share`` as shown: ``None`` (not shown) when built on fewer than ``threshold``
        contacts."""
        return None if self.hides(base) else share
