"""Will a district reach the target share by the deadline? A robust straight-line fit over
weekly shares (Theil-Sen), with Sen's confidence interval for the slope as the uncertainty band.

Why Theil-Sen: weekly shares jump around holidays, a closed centre or a campaign; the median of
the pairwise slopes ignores up to ~29 % wild weeks where a least-squares fit would follow them.
The band: the slopes ranked ``(N - C)/2`` and ``(N + C)/2`` among the ``N`` pairwise slopes,
with ``C = z * sqrt(n(n-1)(2n+5)/18)`` (Sen 1968; Gilbert 1987, ch. 16), ``z`` = 1.645 for a
90 % band. Each slope gets its own intercept (the median of ``y - slope * x``), and the band's
crossing dates are where those lines reach the target. The target and the deadline are
configuration (``MetricsSettings``); the figures fitted are the general-needs weekly shares
(``figures.forecasts``). Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum
from statistics import median

MIN_WEEKS = 4
"""Fewer weekly points than this is no trend."""

Z_90 = 1.6448536269514722
"""The standard normal quantile for a two-sided 90 % band."""


class Outlook(StrEnum):
    """What the fit says about reaching the target by the deadline."""

    REACHED = "reached"
    """The fitted share of the last full week is at or above the target."""
    ON_TRACK = "on_track"
    """The fit reaches the target in a week starting on or before the deadline."""
    BEHIND = "behind"
    """The fit reaches the target, but after the deadline (``weeks_behind`` weeks)."""
    NOT_WITHIN_HORIZON = "not_within_horizon"
    """The fit falls, is flat, or reaches the target only after the horizon."""
    INSUFFICIENT_DATA = "insufficient_data"
    """Fewer than ``MIN_WEEKS`` weeks with contacts."""


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
    weeks_behind: int | None
    """Whole weeks from the deadline to the crossing week's Monday (rounded up); 0 when reached
    or on track, None when there is no crossing in sight."""
    slope_per_week: float | None
    """Change of the share per week (0.01 = one percentage point a week)."""
    latest_fitted: float | None
    crossing: dt.date | None
    """The Monday of the week the fit reaches the target (None when reached, not within the
    horizon or without data)."""
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


def weeks_behind(crossing: dt.date, deadline: dt.date) -> int:
    """Whole weeks from ``deadline`` to ``crossing``, rounded up; 0 when on or before it."""
    return max(0, math.ceil((crossing - deadline).days / 7))


def forecast(
    weekly: list[tuple[dt.date, float]],
    *,
    target: float,
    deadline: dt.date,
    horizon_weeks: int,
) -> Forecast:
    """Forecast from ``weekly`` (Monday of the week, share of that week), weeks without
    contacts left out, against ``target`` by ``deadline``.

    The fit looks ``horizon_weeks`` past the last week, and at least to the deadline (a
    crossing before the deadline is "on track" however far away). A crossing later than that,
    or a falling or flat fit, is "not within the horizon"; a crossing after the deadline is
    "behind" by the weeks in between.
    """
    weekly = sorted(weekly)
    if len(weekly) < MIN_WEEKS:
        return Forecast(Outlook.INSUFFICIENT_DATA, len(weekly), None, None, None, None, None, None)
    first = weekly[0][0]
    points = [((monday - first).days / 7, share) for monday, share in weekly]
    fit, shallow, steep = theil_sen(points)
    last_x = points[-1][0]
    latest = fit.intercept + fit.slope * last_x
    horizon_x = max(last_x + horizon_weeks, (deadline - first).days / 7)

    def monday_of(week: float | None) -> dt.date | None:
        if week is None or week > horizon_x:
            return None
        # (a tolerance so that 20.000000001 weeks of float arithmetic is week 20)
        return first + dt.timedelta(weeks=math.ceil(max(week, last_x) - 1e-9))

    if latest >= target:
        return Forecast(Outlook.REACHED, len(weekly), 0, fit.slope, latest, None, None, None)
    crossing = monday_of(fit.crossing_week(target))
    if crossing is None:
        return Forecast(
            Outlook.NOT_WITHIN_HORIZON, len(weekly), None, fit.slope, latest, None, None, None
        )
    behind = weeks_behind(crossing, deadline)
    return Forecast(
        Outlook.BEHIND if behind else Outlook.ON_TRACK,
        len(weekly),
        behind,
        fit.slope,
        latest,
        crossing,
        monday_of(steep.crossing_week(target)),
        monday_of(shallow.crossing_week(target)),
    )
