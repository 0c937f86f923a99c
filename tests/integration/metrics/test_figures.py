"""The figures beyond the share: Prometheus exposition from Redis, KVIK and mobile figures,
coverage, trend and forecast, the counting-week export, dead letters re-driven, rebuild, and
the district-share event."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from services.contracts import (
    CloudEvent,
    EventType,
    HelpChannel,
    Topic,
    new_event,
)
from services.metrics import share_events
from services.metrics.commands import rebuild, redrive
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import payload, report, session
from tests.integration.metrics.conftest import Metrics, running_metrics
from tests.support.topics import events_on
from tests.unit.contracts.samples import ENTRY_ID, T0

pytestmark = pytest.mark.integration

BUSINESS = (
    "kanalhub_contacts",
    "kanalhub_digital_share",
    "kanalhub_district_covered",
    "kanalhub_kvik_",
    "kanalhub_help_",
    "kanalhub_kiosks_",
    "kanalhub_mobile_",
)


def _event(event_type: EventType, **changes: Any) -> CloudEvent:
    return new_event(event_type, payload(event_type, **changes), source="/kanalhub/test")


def _operations_events() -> list[CloudEvent]:
    """A KVIK point in Amager Vest with a kiosk that went online, one help request answered
    after 90 s, and a completed mobile visit in Valby (3 h, 2 staff) with one contact."""
    return [
        _event(EventType.REGISTRY_ENTRY_UPSERTED),
        _event(EventType.KVIK_KIOSK_REGISTERED),
        _event(EventType.KVIK_KIOSK_ONLINE),
        _event(EventType.KVIK_HELP_REQUESTED),
        _event(
            EventType.KVIK_HELP_ANSWERED,
            answered_at=T0 + dt.timedelta(minutes=2, seconds=90),
        ),
        _event(EventType.MOBILE_VISIT_PLANNED),
        _event(EventType.MOBILE_VISIT_COMPLETED),
        _event(EventType.MOBILE_VISIT_COMPLETED),  # re-published: counts once
        _event(EventType.MOBILE_CONTACT_RECORDED),
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.VIDEO),
    ]


async def _publish_operations(metrics: Metrics) -> int:
    """Publish the operations events, the registry entry first (as in life: a kiosk's entry
    is known long before its first help request); returns how many were handled."""
    entry, *rest = _operations_events()
    await metrics.publish(entry)
    await metrics.wait_handled(1)
    await metrics.publish(*rest)
    await metrics.wait_handled(1 + len(rest))
    return 1 + len(rest)


async def _scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await metrics.client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith(BUSINESS)
    }


def _value(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scrape[(name, tuple(sorted(labels.items())))]


async def test_operations_events_show_in_the_prometheus_scrape(metrics: Metrics) -> None:
    await _publish_operations(metrics)
    scrape = await _scrape(metrics)
    entry = {"district": "amager-vest", "entry_id": ENTRY_ID}
    assert _value(scrape, "kanalhub_kiosks_online", **entry) == 1
    assert _value(scrape, "kanalhub_kiosks_registered", **entry) == 1
    assert (
        _value(scrape, "kanalhub_help_requests_total", district="amager-vest", channel="video") == 1
    )
    assert _value(scrape, "kanalhub_help_wait_seconds_bucket", channel="video", le="60.0") == 0
    assert _value(scrape, "kanalhub_help_wait_seconds_bucket", channel="video", le="120.0") == 1
    assert _value(scrape, "kanalhub_help_wait_seconds_sum", channel="video") == 90
    assert _value(scrape, "kanalhub_mobile_visits_total", district="valby", state="completed") == 1
    assert _value(scrape, "kanalhub_mobile_staffed_hours_total", district="valby") == 6
    assert _value(scrape, "kanalhub_mobile_onboardings_total", district="valby") == 1
    assert _value(scrape, "kanalhub_district_covered", district="amager-vest") == 1
    assert _value(scrape, "kanalhub_district_covered", district="vanlose") == 0
    assert (
        _value(
            scrape,
            "kanalhub_kvik_sessions_total",
            district="valby",
            outcome="completed",
            help="video",
        )
        == 1
    )
    assert (
        _value(scrape, "kanalhub_contacts_total", district="valby", channel="kvik", mode="assisted")
        == 1
    )


async def test_a_restarted_service_shows_the_same_business_figures(
    hub_settings: HubSettings,
) -> None:
    async with running_metrics(hub_settings) as first:
        await _publish_operations(first)
        before = await _scrape(first)
    async with running_metrics(hub_settings) as second:
        after = await _scrape(second)
    assert before
    assert after == before


async def test_mobile_and_help_figures_for_a_period(metrics: Metrics) -> None:
    await _publish_operations(metrics)
    period = {"period": "day", "date": "2024-01-15"}
    mobile = (
        await metrics.client.get(
            "/mobile", params={**period, "district": "valby"}, headers=metrics.reader
        )
    ).json()
    assert (mobile["visits_completed"], mobile["contacts"], mobile["staffed_hours"]) == (1, 1, 6)
    assert mobile["contacts_per_staffed_hour"] == pytest.approx(1 / 6)
    assert mobile["onboarding_rate"] == 1.0
    funnel = (
        await metrics.client.get("/kvik/funnel", params=period, headers=metrics.reader)
    ).json()
    assert (funnel["help_requested"], funnel["help_answered"]) == (1, 1)
    assert funnel["mean_time_to_help_seconds"] == 90


async def test_coverage_names_the_districts_without_an_open_citizen_service_entry(
    metrics: Metrics,
) -> None:
    await metrics.publish(_event(EventType.REGISTRY_ENTRY_UPSERTED))
    await metrics.wait_handled(1)
    body = (await metrics.client.get("/coverage", headers=metrics.reader)).json()
    covered = {d["district"]: d["entries"] for d in body["districts"]}
    assert covered["amager-vest"] == [ENTRY_ID]
    assert "amager-vest" not in body["uncovered"]
    assert len(body["uncovered"]) == 9
    await metrics.publish(_event(EventType.REGISTRY_ENTRY_RETIRED))
    await metrics.wait_handled(2)
    body = (await metrics.client.get("/coverage", headers=metrics.reader)).json()
    assert "amager-vest" in body["uncovered"]


def _weekly_reports(weeks: int) -> list[CloudEvent]:
    """Valby's contact centre: 60 % self-service in the week of 1 Jan 2024, +1 point a week."""
    return [
        report(
            60 + n,
            40 - n,
            source="contact_centre",
            channel="phone",
            district="valby",
            day=dt.date(2024, 1, 1) + dt.timedelta(weeks=n),
        )
        for n in range(weeks)
    ]


async def test_the_forecast_finds_the_known_crossing_week(metrics: Metrics) -> None:
    await metrics.publish(*_weekly_reports(12))
    await metrics.wait_handled(12)
    body = (
        await metrics.client.get("/forecast", params={"date": "2024-04-01"}, headers=metrics.reader)
    ).json()
    valby = next(d for d in body["districts"] if d["district"] == "valby")
    assert valby["outlook"] == "on_track"
    assert valby["crossing"] == "2024-05-20"  # week 20 after 1 January
    assert valby["slope_per_week"] == pytest.approx(0.01)
    osterbro = next(d for d in body["districts"] if d["district"] == "osterbro")
    assert osterbro["outlook"] == "insufficient_data"


async def test_the_trend_lists_each_week_share(metrics: Metrics) -> None:
    await metrics.publish(*_weekly_reports(3))
    await metrics.wait_handled(3)
    body = (
        await metrics.client.get(
            "/trend", params={"date": "2024-01-15", "weeks": 3}, headers=metrics.reader
        )
    ).json()
    valby = next(d for d in body["districts"] if d["district"] == "valby")
    assert [(w["week"], w["share"]) for w in valby["weeks"]] == [
        ("2024-W01", 0.60),
        ("2024-W02", 0.61),
        ("2024-W03", 0.62),
    ]


async def test_the_counting_week_export_lists_contacts_per_channel_and_service(
    metrics: Metrics,
) -> None:
    await metrics.publish(
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE),
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.PHONE),
        report(30, 5),
    )
    await metrics.wait_handled(3)
    response = await metrics.client.get(
        "/export/counting-weeks.csv", params={"week": "2024-01-17"}, headers=metrics.reader
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "week,channel,service,contacts,self_service,assisted",
        "2024-W03,digital,change_of_address,35,30,5",
        "2024-W03,kvik,passport,2,1,1",
    ]


async def test_kpis_give_cost_per_contact_and_the_saving_at_80(metrics: Metrics) -> None:
    await metrics.publish(report(60, 40))  # digital platform, 60 % self-service
    await metrics.wait_handled(1)
    body = (
        await metrics.client.get(
            "/kpis", params={"period": "day", "date": "2024-01-15"}, headers=metrics.reader
        )
    ).json()
    assert body["digital_share"] == 0.6
    assert body["total_cost_dkk"] == 500.0  # 100 digital contacts at 5 kr
    assert body["contacts_to_move_for_target"] == 20
    assert body["saving_at_target_dkk"] == 0.0  # moving digital to digital saves nothing


async def _deadletters(settings: HubSettings, count: int) -> list[dict[str, str]]:
    reader = AIOKafkaConsumer(
        settings.topic(Topic.DEADLETTER),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await reader.start()
    found: list[dict[str, str]] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < count:
                batch = await reader.getmany(timeout_ms=500)
                found += [
                    {k: v.decode() for k, v in record.headers}
                    for records in batch.values()
                    for record in records
                ]
    finally:
        await reader.stop()
    return found


async def test_a_help_event_for_an_unknown_entry_is_dead_lettered_then_redriven(
    metrics: Metrics,
) -> None:
    await metrics.publish(_event(EventType.KVIK_HELP_REQUESTED))
    letters = await _deadletters(metrics.settings, 1)
    assert letters[0]["dlq_reason"] == "unknown_entry"
    await metrics.publish(_event(EventType.REGISTRY_ENTRY_UPSERTED))
    await metrics.wait_handled(1)
    settings = MetricsSettings(hub=metrics.settings)
    assert await redrive(settings, reason="unknown_entry") == 1
    await metrics.wait_handled(2)
    assert await redrive(settings) == 0  # each dead letter is re-driven once
    scrape = await _scrape(metrics)
    assert (
        _value(scrape, "kanalhub_help_requests_total", district="amager-vest", channel="video") == 1
    )


async def _aggregates(store: MetricsStore, metrics: Metrics) -> dict[str, Any]:
    redis = metrics.runtime.redis
    snapshot: dict[str, Any] = {}
    for pattern in store.aggregate_patterns():
        if pattern.endswith(("seen:*", "share:*")):
            continue
        async for key in redis.scan_iter(match=pattern):
            snapshot[key] = await redis.hgetall(key)
    return snapshot


async def test_rebuild_reproduces_the_aggregates_exactly(hub_settings: HubSettings) -> None:
    store = MetricsStore(hub_settings)
    async with running_metrics(hub_settings) as metrics:
        repeated = session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE)
        operations = await _publish_operations(metrics)
        events = [
            repeated,
            repeated,
            report(10, 5),
            report(12, 3),  # replaces the first
            *_weekly_reports(3),
        ]
        await metrics.publish(*events)
        await metrics.wait_handled(operations + len(events) - 1)
        before = await _aggregates(store, metrics)
    async with running_metrics(hub_settings) as metrics:
        # the app is running only to give the test a Redis client; nothing new arrives
        settings = MetricsSettings(hub=hub_settings)
        replayed = await rebuild(settings)
        assert replayed == operations + len(events)
        assert await _aggregates(store, metrics) == before
    assert before


async def test_a_moved_share_is_published_once_per_interval_per_district(
    metrics: Metrics,
) -> None:
    settings = MetricsSettings(hub=metrics.settings, share_event_interval_seconds=60)
    store, redis, outbox = (
        MetricsStore(metrics.settings),
        metrics.runtime.redis,
        metrics.runtime.outbox,
    )
    now = dt.datetime.now(dt.UTC)
    await metrics.publish(session(EventType.KVIK_SESSION_COMPLETED, at=now, help="none"))
    await metrics.wait_handled(1)

    async def publish() -> int:
        return await share_events.publish_changed_shares(store, redis, outbox, settings, now)

    assert await publish() == 1  # valby, the only district with contacts
    assert await publish() == 0  # two replicas within the interval: once
    await metrics.publish(session(EventType.KVIK_SESSION_COMPLETED, at=now, help="video"))
    await metrics.wait_handled(2)
    assert await publish() == 0  # moved, but the interval is not over
    await redis.delete(store.key("share", "lock", "valby"))  # the interval passes
    assert await publish() == 1

    def shares(events: list[CloudEvent]) -> list[float | None]:
        return [
            e.data.share  # type: ignore[union-attr]
            for e in events
            if e.type is EventType.METRICS_DISTRICT_SHARE_CHANGED
        ]

    events = await events_on(
        metrics.settings, Topic.CONTACTS, expected=lambda seen: len(shares(seen)) >= 2
    )
    assert shares(events) == [1.0, 0.5]
