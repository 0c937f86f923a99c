"""General and special needs through the routes and the scrape: the headline is the general-needs
share, the split adds up to the overall figures, and the forecast is judged against the
configured target and deadline (docs/metrics.md, "General and special needs")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.contracts import CloudEvent, EventType, HelpChannel, new_event
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import payload, report, session
from tests.integration.metrics.conftest import Metrics, running_metrics

pytestmark = pytest.mark.integration

DAY = {"period": "day", "date": "2024-01-15"}


def _service(code: str, general_needs: bool) -> CloudEvent:
    data = payload(
        EventType.REGISTRY_SERVICE_UPSERTED, code=code, name=code, general_needs=general_needs
    )
    return new_event(EventType.REGISTRY_SERVICE_UPSERTED, data, source="/kanalhub/registry")


def _phone(self_service: int, assisted: int, **changes: Any) -> CloudEvent:
    return report(self_service, assisted, source="contact_centre", channel="phone", **changes)


async def _catalogue(metrics: Metrics) -> int:
    """home_care is special needs, change_of_address general; returns the events handled."""
    await metrics.publish(_service("change_of_address", True), _service("home_care", False))
    await metrics.wait_handled(2)
    return 2


def _assert_adds_up(figures: dict[str, Any]) -> None:
    general, special = figures["needs"]["general"], figures["needs"]["special"]
    for what in ("self_service", "assisted", "total"):
        assert general[what] + special[what] == figures[what], what
    for channel, modes in figures["channels"].items():
        for mode, count in modes.items():
            assert (
                general["channels"][channel][mode] + special["channels"][channel][mode] == count
            ), (channel, mode)


async def test_the_share_reports_the_general_needs_headline_beside_the_overall_share(
    metrics: Metrics,
) -> None:
    handled = await _catalogue(metrics)
    events = [
        report(80, 20),  # Nørrebro, digital platform, change of address (general)
        _phone(0, 50, service="home_care"),  # special needs, at the phone
        # a KVIK session for a service the catalogue does not know: counted as general
        session(
            EventType.KVIK_SESSION_COMPLETED,
            help=HelpChannel.NONE,
            district="norrebro",
            service="unheard_of",
        ),
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    body = await metrics.share(**DAY, district="norrebro")
    assert (body["total"], body["self_service"]) == (151, 81)
    assert body["needs"]["general"]["total"] == 101
    assert body["needs"]["special"]["total"] == 50
    assert body["headline_share"] == pytest.approx(81 / 101)
    assert body["headline_share"] > body["share"]  # special-needs contacts do not pull it down
    assert body["needs"]["special"]["share"] == 0.0
    assert body["needs"]["general"]["channels"]["kvik"]["self_service"] == 1
    _assert_adds_up(body)


async def test_the_split_adds_up_in_every_district_and_for_one_service(metrics: Metrics) -> None:
    handled = await _catalogue(metrics)
    events = [
        report(80, 20),
        _phone(3, 40, service="home_care"),
        _phone(10, 30, district="valby"),
        _phone(0, 7, district="valby", service="home_care"),
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    body = (await metrics.client.get("/share/districts", params=DAY, headers=metrics.reader)).json()
    for district in body["districts"]:
        _assert_adds_up(district)
    everyone = await metrics.share(**DAY)
    _assert_adds_up(everyone)
    assert everyone["needs"]["special"]["total"] == 50
    home_care = await metrics.share(**DAY, service="home_care")
    assert home_care["needs"]["special"]["total"] == home_care["total"] == 50
    assert home_care["needs"]["general"]["total"] == 0
    assert home_care["headline_share"] is None


async def test_the_trend_reports_each_weeks_split(metrics: Metrics) -> None:
    handled = await _catalogue(metrics)
    events = [
        report(60, 40, district="valby", day=dt.date(2024, 1, 8)),
        _phone(0, 100, district="valby", service="home_care", day=dt.date(2024, 1, 9)),
        report(70, 30, district="valby", day=dt.date(2024, 1, 15)),
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    body = (
        await metrics.client.get(
            "/trend", params={"date": "2024-01-15", "weeks": 2}, headers=metrics.reader
        )
    ).json()
    valby = next(d for d in body["districts"] if d["district"] == "valby")
    first, second = valby["weeks"]
    assert (first["share"], first["headline_share"]) == (0.3, 0.6)
    assert first["needs"]["special"] == {"self_service": 0, "assisted": 100, "share": 0.0}
    assert (second["share"], second["headline_share"]) == (0.7, 0.7)
    for week in (first, second):
        general, special = week["needs"]["general"], week["needs"]["special"]
        assert general["self_service"] + special["self_service"] == week["self_service"]
        assert general["assisted"] + special["assisted"] == week["assisted"]


def _weeks_of_valby(weeks: int) -> list[CloudEvent]:
    """Valby: general needs 60 % self-service in the week of 1 Jan 2024, +1 point a week; and
    every week 100 special-needs contacts at the phone, none self-service."""
    events: list[CloudEvent] = []
    for n in range(weeks):
        day = dt.date(2024, 1, 1) + dt.timedelta(weeks=n)
        events.append(_phone(60 + n, 40 - n, district="valby", day=day))
        events.append(_phone(0, 100, district="valby", service="home_care", day=day))
    return events


async def test_the_forecast_judges_the_general_needs_share_against_target_and_deadline(
    hub_settings: HubSettings,
) -> None:
    # Target 75 % by Monday 1 April 2024: the general-needs trend (71 % in the last full week)
    # gets there in the week of 15 April - two weeks late. The overall share (about 35 %)
    # would never get there.
    async with running_metrics(
        hub_settings, target_share=0.75, target_deadline=dt.date(2024, 4, 1)
    ) as metrics:
        handled = await _catalogue(metrics)
        events = _weeks_of_valby(12)
        await metrics.publish(*events)
        await metrics.wait_handled(handled + len(events))
        body = (
            await metrics.client.get(
                "/forecast", params={"date": "2024-04-01"}, headers=metrics.reader
            )
        ).json()
        assert (body["target"], body["target_deadline"], body["basis"]) == (
            0.75,
            "2024-04-01",
            "general",
        )
        valby = next(d for d in body["districts"] if d["district"] == "valby")
        assert valby["outlook"] == "behind"
        assert valby["weeks_behind"] == 2
        assert valby["crossing"] == "2024-04-15"
        assert valby["slope_per_week"] == pytest.approx(0.01)
        osterbro = next(d for d in body["districts"] if d["district"] == "osterbro")
        assert (osterbro["outlook"], osterbro["weeks_behind"]) == ("insufficient_data", None)

        scrape = await _scrape(metrics)
        # the scrape's forecast is as of today: no recent weeks, so no Valby forecast there;
        # the configured target and deadline are always exposed
        assert scrape[("kanalhub_target_share_ratio", ())] == 0.75
        midnight = dt.datetime(2024, 4, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        assert scrape[("kanalhub_target_deadline_timestamp_seconds", ())] == midnight.timestamp()


async def test_the_default_deadline_puts_the_same_trend_on_track(metrics: Metrics) -> None:
    handled = await _catalogue(metrics)
    events = _weeks_of_valby(12)
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    body = (
        await metrics.client.get("/forecast", params={"date": "2024-04-01"}, headers=metrics.reader)
    ).json()
    assert (body["target"], body["target_deadline"]) == (0.8, "2029-12-31")
    valby = next(d for d in body["districts"] if d["district"] == "valby")
    assert (valby["outlook"], valby["weeks_behind"], valby["crossing"]) == (
        "on_track",
        0,
        "2024-05-20",
    )


async def test_kpis_move_only_general_needs_contacts_for_the_target(metrics: Metrics) -> None:
    handled = await _catalogue(metrics)
    events = [report(60, 40), _phone(0, 50, service="home_care")]
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    body = (await metrics.client.get("/kpis", params=DAY, headers=metrics.reader)).json()
    assert body["digital_share"] == pytest.approx(60 / 150)
    assert body["headline_share"] == 0.6
    assert body["special_needs_share"] == 0.0
    assert (body["target"], body["target_deadline"]) == (0.8, "2029-12-31")
    assert body["contacts_to_move_for_target"] == 20  # 80 % of the 100 general-needs contacts
    assert body["total_cost_dkk"] == 100 * 5 + 50 * 40


async def _scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await metrics.client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith(
            ("kanalhub_digital_share", "kanalhub_target", "kanalhub_forecast")
        )
    }


async def test_the_scrape_exposes_the_share_per_needs_group(metrics: Metrics) -> None:
    handled = await _catalogue(metrics)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    events = [report(80, 20, day=yesterday), _phone(0, 50, service="home_care", day=yesterday)]
    await metrics.publish(*events)
    await metrics.wait_handled(handled + len(events))
    scrape = await _scrape(metrics)

    def share(**labels: str) -> float:
        return scrape[("kanalhub_digital_share_by_needs_ratio", tuple(sorted(labels.items())))]

    assert share(district="norrebro", window="28d", needs="general") == 0.8
    assert share(district="norrebro", window="28d", needs="special") == 0.0
    assert share(district="all", window="28d", needs="general") == 0.8
    overall = scrape[
        ("kanalhub_digital_share_ratio", (("district", "norrebro"), ("window", "28d")))
    ]
    assert overall == pytest.approx(80 / 150)
    assert scrape[("kanalhub_target_share_ratio", ())] == 0.8
