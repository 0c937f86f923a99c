"""Small statistics for benchmark figures."""

from __future__ import annotations

import statistics


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no samples."""
    if not samples:
        return 0.0
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=1000, method="inclusive")
    index = min(len(cuts) - 1, max(0, round(q * 10) - 1))
    return cuts[index]
