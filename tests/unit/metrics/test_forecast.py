"""The Theil-Sen forecast of when a district reaches 80 %."""

from __future__ import annotations

import datetime as dt

import pytest

from services.metrics.forecast import Outlook, forecast, theil_sen

MONDAY = dt.date(2024, 1, 1)


def _weeks(shares: list[float]) -> list[tuple[dt.date, float]]:
    return [(MONDAY + dt.timedelta(weeks=n), share) for n, share in enumerate(shares)]


def test_a_steady_rise_of_one_point_a_week_crosses_80_on_the_known_monday() -> None:
    # 60 % in week 0, +1 point a week: 80 % in week 20.
    result = forecast(_weeks([0.60 + 0.01 * n for n in range(12)]))
    assert result.outlook is Outlook.ON_TRACK
    assert result.slope_per_week == pytest.approx(0.01)
    assert result.crossing == MONDAY + dt.timedelta(weeks=20)


def test_wild_weeks_do_not_move_the_robust_fit() -> None:
    shares = [0.60 + 0.01 * n for n in range(16)]
    shares[3], shares[9], shares[12] = 0.05, 0.99, 0.10  # a closed centre, a data glitch
    result = forecast(_weeks(shares))
    assert result.crossing == MONDAY + dt.timedelta(weeks=20)


def test_the_band_brackets_the_crossing_when_the_shares_are_noisy() -> None:
    noise = [0.02, -0.015, 0.01, -0.02, 0.005, 0.015, -0.01, 0.0, 0.02, -0.02, 0.01, -0.005]
    result = forecast(_weeks([0.60 + 0.01 * n + e for n, e in enumerate(noise)]))
    assert result.crossing_earliest is not None
    assert result.crossing is not None
    assert result.crossing_earliest <= result.crossing
    assert result.crossing_latest is None or result.crossing <= result.crossing_latest


def test_a_falling_share_is_not_on_track() -> None:
    result = forecast(_weeks([0.70 - 0.005 * n for n in range(10)]))
    assert result.outlook is Outlook.NOT_ON_TRACK
    assert result.crossing is None


def test_a_crossing_beyond_the_horizon_is_not_on_track() -> None:
    # +0.1 point a week from 50 %: 300 weeks to go, the horizon is 156.
    result = forecast(_weeks([0.50 + 0.001 * n for n in range(10)]))
    assert result.outlook is Outlook.NOT_ON_TRACK


def test_a_district_above_80_has_reached_it() -> None:
    assert forecast(_weeks([0.82, 0.83, 0.81, 0.84])).outlook is Outlook.REACHED


def test_three_weeks_are_no_trend() -> None:
    assert forecast(_weeks([0.6, 0.7, 0.75])).outlook is Outlook.INSUFFICIENT_DATA


def test_theil_sen_is_the_median_of_pairwise_slopes() -> None:
    fit, low, high = theil_sen([(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)])
    # pairwise slopes 1, 1, 1, 10, 14.5, 28 -> median 5.5
    assert fit.slope == pytest.approx(5.5)
    assert low.slope <= fit.slope <= high.slope
