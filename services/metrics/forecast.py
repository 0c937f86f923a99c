"""When will a district reach 80 % digital self-service? A robust straight-line fit over weekly
shares (Theil-Sen), with Sen's confidence interval for the slope as the uncertainty band.

Why Theil-Sen: weekly shares jump around holidays, a closed centre or a campaign; the median of
the pairwise slopes ignores up to ~29 % wild weeks where a least-squares fit would follow them.
The band: the slopes ranked ``(N - C)/2`` and ``(N + C)/2`` among the ``N`` pairwise slopes,
with ``C = z * sqrt(n(n-1)(2n+5)/18)`` (Sen 1968; Gilbert 1987, ch. 16), ``z`` = 1.645 for a
90 % band. Each slope gets its own intercept (the median of ``y - slope * x``), and the band's
crossing dates are where those lines reach the target. Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from statistics import median

TARGET = 0.80
"""The municipality's goal: 80 % of contacts by digital self-service."""

MIN_WEEKS = 4
"""Fewer weekly points than this is no trend."""

Z_90 = 1.6448536269514722
"""The standard normal quantile for a two-sided 90 % band."""


class Outlook(StrEnum):
    """What the fit says about reaching the target."""

    REACHED = "reached"
    ON_TRACK = "on_track"
    NOT_ON_TRACK = "not_on_track"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Line:
    """``share = intercept + slope * weeks since the first week``."""

    slope: float
    intercept: float

    def crossing_week(self, target: float) -> float | None:
        """Weeks after the first week when the line reaches ``target``; None if never."""
        if self.slope <= 0:
            return None
        return (target - self.intercept) / self.slope


@dataclass(frozen=True)
class Forecast:
    """The fit over weekly shares and when it reaches the target, with a 90 % band."""

    outlook: Outlook
    weeks_used: int
    slope_per_week: float | None
    """Change of the share per week (0.01 = one percentage point a week)."""
    latest_fitted: float | None
    crossing: dt.date | None
    """The Monday of the week the fit reaches the target (None unless on track)."""
    crossing_earliest: dt.date | None
    """The band's early end: the crossing date with the band's steepest slope."""
    crossing_latest: dt.date | None
    """The band's late end; None when the shallowest slope in the band never gets there."""


def theil_sen(points: list[tuple[float, float]], z: float = Z_90) -> tuple[Line, Line, Line]:
    """The Theil-Sen line of ``points`` (x, y), and the lines of the lower and upper slope of
    Sen's confidence interval. Needs at least two distinct x."""
    slopes = sorted(
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    )
    if not slopes:
        raise ValueError("need at least two points with different x")
    n, count = len(points), len(slopes)
    spread = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    low_rank = max(0, min(count - 1, math.floor((count - spread) / 2)))
    high_rank = max(0, min(count - 1, math.ceil((count + spread) / 2)))

    def line(slope: float) -> Line:
        return Line(slope, median(y - slope * x for x, y in points))

    return line(median(slopes)), line(slopes[low_rank]), line(slopes[high_rank])


def forecast(
    weekly: list[tuple[dt.date, float]],
    target: float = TARGET,
    horizon_weeks: int = 156,
) -> Forecast:
    """Forecast from ``weekly`` (Monday of the week, share of that week), weeks without
    contacts left out. "Not on track" when the fit falls, is flat, or crosses later than
    ``horizon_weeks`` after the last week."""
    weekly = sorted(weekly)
    if len(weekly) < MIN_WEEKS:
        return Forecast(Outlook.INSUFFICIENT_DATA, len(weekly), None, None, None, None, None)
    first = weekly[0][0]
    points = [((monday - first).days / 7, share) for monday, share in weekly]
    fit, shallow, steep = theil_sen(points)
    last_x = points[-1][0]
    latest = fit.intercept + fit.slope * last_x

    def monday_of(week: float | None) -> dt.date | None:
        if week is None or week > last_x + horizon_weeks:
            return None
        # (a tolerance so that 20.000000001 weeks of float arithmetic is week 20)
        return first + dt.timedelta(weeks=math.ceil(max(week, last_x) - 1e-9))

    if latest >= target:
        return Forecast(Outlook.REACHED, len(weekly), fit.slope, latest, None, None, None)
    crossing = monday_of(fit.crossing_week(target))
    return Forecast(
        Outlook.ON_TRACK if crossing else Outlook.NOT_ON_TRACK,
        len(weekly),
        fit.slope,
        latest,
        crossing,
        monday_of(steep.crossing_week(target)) if crossing else None,
        monday_of(shallow.crossing_week(target)) if crossing else None,
    )
