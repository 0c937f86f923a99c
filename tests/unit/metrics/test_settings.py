"""The metrics service's target and deadline are configuration, validated at startup."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from services.metrics.settings import MetricsSettings


def test_the_defaults_are_80_percent_by_the_end_of_the_council_term() -> None:
    settings = MetricsSettings()
    assert settings.target_share == 0.8
    assert settings.target_deadline == dt.date(2029, 12, 31)


def test_target_and_deadline_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANALHUB_METRICS_TARGET_SHARE", "0.85")
    monkeypatch.setenv("KANALHUB_METRICS_TARGET_DEADLINE", "2027-06-30")
    settings = MetricsSettings()
    assert (settings.target_share, settings.target_deadline) == (0.85, dt.date(2027, 6, 30))


@pytest.mark.parametrize("share", ["0", "-0.1", "1.01", "80", "eighty"])
def test_a_target_outside_0_to_1_is_refused(monkeypatch: pytest.MonkeyPatch, share: str) -> None:
    monkeypatch.setenv("KANALHUB_METRICS_TARGET_SHARE", share)
    with pytest.raises(ValidationError, match="target_share"):
        MetricsSettings()


def test_a_target_of_100_percent_is_allowed() -> None:
    assert MetricsSettings(target_share=1).target_share == 1


@pytest.mark.parametrize("deadline", ["1893456000", "2029-13-01", "31-12-2029", "20291231", ""])
def test_a_deadline_that_is_not_a_calendar_day_is_refused(
    monkeypatch: pytest.MonkeyPatch, deadline: str
) -> None:
    monkeypatch.setenv("KANALHUB_METRICS_TARGET_DEADLINE", deadline)
    with pytest.raises(ValidationError, match="the deadline is a calendar day"):
        MetricsSettings()


def test_a_number_is_no_deadline() -> None:
    with pytest.raises(ValidationError, match="target_deadline"):
        MetricsSettings(target_deadline=1893456000)
