"""The Theil-Sen forecast of when a district reaches the target, and whether that is by the
deadline."""

from __future__ import annotations

import datetime as dt

import pytest

from services.metrics.forecast import Forecast, Outlook, forecast, theil_sen, weeks_behind

MONDAY = dt.date(2024, 1, 1)
DEADLINE = dt.date(2029, 12, 31)


def _forecast(
    weekly: list[tuple[dt.date, float]],
    target: float = 0.8,
    deadline: dt.date = DEADLINE,
    horizon_weeks: int = 156,
) -> Forecast:
    return forecast(weekly, target=target, deadline=deadline, horizon_weeks=horizon_weeks)


def _weeks(shares: list[float]) -> list[tuple[dt.date, float]]:
    return [(MONDAY + dt.timedelta(weeks=n), share) for n, share in enumerate(shares)]


def test_a_steady_rise_of_one_point_a_week_crosses_80_on_the_known_monday() -> None:
    # 60 % in week 0, +1 point a week: 80 % in week 20.
    result = _forecast(_weeks([0.60 + 0.01 * n for n in range(12)]))
    assert result.outlook is Outlook.ON_TRACK
    assert result.slope_per_week == pytest.approx(0.01)
    assert result.crossing == MONDAY + dt.timedelta(weeks=20)


def test_wild_weeks_do_not_move_the_robust_fit() -> None:
    shares = [0.60 + 0.01 * n for n in range(16)]
    shares[3], shares[9], shares[12] = 0.05, 0.99, 0.10  # a closed centre, a data glitch
    result = _forecast(_weeks(shares))
    assert result.crossing == MONDAY + dt.timedelta(weeks=20)


def test_the_band_brackets_the_crossing_when_the_shares_are_noisy() -> None:
    noise = [0.02, -0.015, 0.01, -0.02, 0.005, 0.015, -0.01, 0.0, 0.02, -0.02, 0.01, -0.005]
    result = _forecast(_weeks([0.60 + 0.01 * n + e for n, e in enumerate(noise)]))
    assert result.crossing_earliest is not None
    assert result.crossing is not None
    assert result.crossing_earliest <= result.crossing
    assert result.crossing_latest is None or result.crossing <= result.crossing_latest


def test_a_falling_share_is_not_within_the_horizon() -> None:
    result = _forecast(_weeks([0.70 - 0.005 * n for n in range(10)]))
    assert result.outlook is Outlook.NOT_WITHIN_HORIZON
    assert (result.crossing, result.weeks_behind) == (None, None)


def test_a_crossing_beyond_the_horizon_and_the_deadline_is_not_within_the_horizon() -> None:
    # +0.1 point a week from 50 %: 300 weeks to go, the horizon is 156, the deadline sooner.
    result = _forecast(_weeks([0.50 + 0.001 * n for n in range(10)]), deadline=dt.date(2025, 1, 6))
    assert result.outlook is Outlook.NOT_WITHIN_HORIZON


def test_a_crossing_on_or_before_the_deadline_is_on_track() -> None:
    # 60 % in week 0, +1 point a week: 80 % in the week of 20 May 2024.
    crossing = MONDAY + dt.timedelta(weeks=20)
    for deadline in (crossing, crossing + dt.timedelta(days=3)):
        result = _forecast(_weeks([0.60 + 0.01 * n for n in range(12)]), deadline=deadline)
        assert result.outlook is Outlook.ON_TRACK
        assert (result.crossing, result.weeks_behind) == (crossing, 0)


def test_a_crossing_after_the_deadline_is_behind_by_the_weeks_in_between() -> None:
    # Crossing on 20 May 2024, the deadline 1 April 2024: 7 weeks late.
    result = _forecast(_weeks([0.60 + 0.01 * n for n in range(12)]), deadline=dt.date(2024, 4, 1))
    assert result.outlook is Outlook.BEHIND
    assert result.weeks_behind == 7
    assert result.crossing == MONDAY + dt.timedelta(weeks=20)


def test_the_horizon_reaches_at_least_to_the_deadline() -> None:
    # +0.1 point a week from 75 %: 50 weeks to 80 %. A horizon of 10 weeks would not see the
    # crossing, but the deadline is 60 weeks away, so the fit is on track.
    result = _forecast(
        _weeks([0.75 + 0.001 * n for n in range(6)]),
        deadline=MONDAY + dt.timedelta(weeks=60),
        horizon_weeks=10,
    )
    assert result.outlook is Outlook.ON_TRACK


def test_the_target_is_a_parameter() -> None:
    shares = _weeks([0.60 + 0.01 * n for n in range(12)])
    assert _forecast(shares, target=0.75).crossing == MONDAY + dt.timedelta(weeks=15)
    assert _forecast(shares, target=0.65).outlook is Outlook.REACHED


def test_weeks_behind_rounds_up_and_is_never_negative() -> None:
    deadline = dt.date(2029, 12, 31)
    assert weeks_behind(dt.date(2029, 12, 24), deadline) == 0
    assert weeks_behind(dt.date(2030, 1, 1), deadline) == 1
    assert weeks_behind(dt.date(2030, 1, 14), deadline) == 2


def test_a_district_above_80_has_reached_it() -> None:
    result = _forecast(_weeks([0.82, 0.83, 0.81, 0.84]))
    assert (result.outlook, result.weeks_behind) == (Outlook.REACHED, 0)


def test_three_weeks_are_no_trend() -> None:
    assert _forecast(_weeks([0.6, 0.7, 0.75])).outlook is Outlook.INSUFFICIENT_DATA


def test_theil_sen_is_the_median_of_pairwise_slopes() -> None:
    fit, low, high = theil_sen([(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)])
    # pairwise slopes 1, 1, 1, 10, 14.5, 28 -> median 5.5
    assert fit.slope == pytest.approx(5.5)
    assert low.slope <= fit.slope <= high.slope
