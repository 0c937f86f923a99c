"""Usage per building and entry point, through the real consumer, Valkey and the HTTP API: a
KVIK session counts at its entry and its site, a mobile contact at its site, a site's contacts
split by the administrations sharing it, usage equal to the sum of its channels, the ranking,
the bounded Prometheus figure, and rebuild reproducing the usage rollups."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.contracts import (
    Administration,
    Channel,
    CloudEvent,
    ContactMode,
    District,
    EntryKind,
    EventType,
    HelpChannel,
    new_event,
)
from services.metrics.commands import rebuild
from services.metrics.domain import ContactCount
from services.metrics.settings import MetricsSettings
from services.metrics.store import Counts, MetricsStore, flush_counts
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import AT, payload, session
from tests.integration.metrics.conftest import MANAGER, Metrics, running_metrics
from tests.support.tokens import auth
from tests.unit.contracts.samples import ENTRY_ID, SITE_ID

pytestmark = pytest.mark.integration

WEEK = {"period": "week", "date": "2024-01-15"}
CENTRE = "entry-borgerservice-islands-brygge"
JOBCENTRE = "entry-jobcenter-islands-brygge"
HOURS = {
    "weekly": [{"weekday": day, "opens": "10:00", "closes": "17:00"} for day in range(5)],
    "exceptions": [],
}


def _registry(event_type: EventType, **changes: Any) -> CloudEvent:
    return new_event(event_type, payload(event_type, **changes), source="/kanalhub/registry")


def _entry(entry_id: str, kind: EntryKind, administration: Administration) -> CloudEvent:
    return _registry(
        EventType.REGISTRY_ENTRY_UPSERTED,
        entry_id=entry_id,
        kind=kind,
        administration=administration,
        opening_hours=HOURS,
    )


def _kvik(help: HelpChannel = HelpChannel.NONE, at: dt.datetime = AT) -> CloudEvent:
    return session(
        EventType.KVIK_SESSION_COMPLETED,
        at=at,
        help=help,
        entry_id=ENTRY_ID,
        district="amager-vest",
    )


def _mobile(site_id: str | None, entry_id: str | None = None) -> CloudEvent:
    data = payload(
        EventType.MOBILE_CONTACT_RECORDED,
        contact_id=f"contact-{site_id}-{entry_id}",
        district="amager-vest",
        service="passport",
        mode=ContactMode.ASSISTED,
        at=AT,
        site_id=site_id,
        entry_id=entry_id,
    )
    return new_event(EventType.MOBILE_CONTACT_RECORDED, data, source="/kanalhub/mobile", time=AT)


async def _islands_brygge(metrics: Metrics) -> int:
    """The Islands Brygge site with a KVIK point (ØKF), a citizen-service centre (ØKF) and a
    job centre (BIF); returns how many events were handled."""
    events = [
        _registry(EventType.REGISTRY_SITE_UPSERTED),
        _registry(EventType.REGISTRY_ENTRY_UPSERTED, opening_hours=HOURS),  # ENTRY_ID, KVIK
        _entry(CENTRE, EntryKind.CITIZEN_SERVICE_CENTRE, Administration.OKF),
        _entry(JOBCENTRE, EntryKind.JOB_CENTRE, Administration.BIF),
    ]
    await metrics.publish(*events)
    await metrics.wait_handled(len(events))
    return len(events)


async def _get(metrics: Metrics, path: str, **params: Any) -> dict[str, Any]:
    response = await metrics.client.get(path, params=params, headers=metrics.reader)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _count_at_desks(metrics: Metrics, *contacts: ContactCount) -> None:
    """Counter contacts as the desk intake hands them to the store (``add_contacts``)."""
    changes: Counts = Counter()
    MetricsStore(metrics.settings).add_contacts(changes, contacts)
    async with metrics.runtime.redis.pipeline(transaction=True) as pipe:
        flush_counts(pipe, changes)
        await pipe.execute()


def _channel_sum(place: dict[str, Any]) -> int:
    return sum(modes["self_service"] + modes["assisted"] for modes in place["channels"].values())


async def test_a_kvik_session_counts_at_its_entry_and_the_entry_site(metrics: Metrics) -> None:
    handled = await _islands_brygge(metrics)
    await metrics.publish(_kvik(), _kvik(HelpChannel.VIDEO))
    await metrics.wait_handled(handled + 2)
    entries = {e["entry_id"]: e for e in (await _get(metrics, "/usage/entries", **WEEK))["entries"]}
    kvik = entries[ENTRY_ID]
    assert kvik["channels"]["kvik"] == {"self_service": 1, "assisted": 1, "total": 2}
    assert (kvik["site_id"], kvik["site_name"]) == (SITE_ID, "Islands Brygge Kulturhus")
    assert kvik["open_hours"] == 35.0  # Monday to Friday 10-17, no holiday in 2024-W03
    assert kvik["contacts_per_open_hour"] == pytest.approx(2 / 35)
    assert entries[CENTRE]["contacts"] == 0  # open, no contacts yet: listed with zeros
    site = (await _get(metrics, "/usage/sites", **WEEK))["sites"]
    assert [(s["site_id"], s["contacts"]) for s in site] == [(SITE_ID, 2)]


async def test_a_mobile_contact_counts_at_its_site_and_its_mobile_stop(metrics: Metrics) -> None:
    handled = await _islands_brygge(metrics)
    stop = "entry-mobile-islands-brygge"
    await metrics.publish(
        _entry(stop, EntryKind.MOBILE_STOP, Administration.OKF),
        _mobile(SITE_ID, stop),
        _mobile(SITE_ID),  # a visit at the site, no mobile stop named
        _mobile(None),  # an ad-hoc place: no usage, still a mobile contact
    )
    await metrics.wait_handled(handled + 4)
    entries = {e["entry_id"]: e for e in (await _get(metrics, "/usage/entries", **WEEK))["entries"]}
    assert entries[stop]["channels"]["mobile"]["assisted"] == 1
    (site,) = (await _get(metrics, "/usage/sites", **WEEK))["sites"]
    assert site["channels"]["mobile"]["assisted"] == 2
    without = [a for a in site["administrations"] if a["administration"] is None]
    assert [(a["contacts"], a["entries"]) for a in without] == [(1, [])]
    share = await metrics.share(period="week", date="2024-01-15", district="amager-vest")
    assert share["channels"]["mobile"]["assisted"] == 3  # the share counts all three


async def test_a_shared_site_splits_its_contacts_by_administration(metrics: Metrics) -> None:
    handled = await _islands_brygge(metrics)
    await metrics.publish(_kvik(), _kvik(), _mobile(SITE_ID))
    await metrics.wait_handled(handled + 3)
    day = AT.date()
    await _count_at_desks(
        metrics,
        *[
            ContactCount(
                day,
                District.AMAGER_VEST,
                Channel.COUNTER,
                ContactMode.ASSISTED,
                "passport",
                entry_id=entry_id,
                site_id=SITE_ID,
            )
            for entry_id in (CENTRE, CENTRE, CENTRE, JOBCENTRE)
        ],
    )
    (site,) = (await _get(metrics, "/usage/sites", **WEEK))["sites"]
    parts = {a["administration"]: a for a in site["administrations"]}
    assert {name: part["contacts"] for name, part in parts.items()} == {
        "okf": 2 + 3,
        "bif": 1,
        None: 1,
    }
    assert parts["okf"]["entries"] == [CENTRE, ENTRY_ID]
    assert site["colocated"] is True
    assert site["contacts"] == 7 == sum(part["contacts"] for part in parts.values())
    assert [e["entry_id"] for e in site["entries"]] == [CENTRE, JOBCENTRE, ENTRY_ID]  # by id


async def test_usage_per_entry_and_per_site_equals_the_sum_of_its_channels(
    metrics: Metrics,
) -> None:
    handled = await _islands_brygge(metrics)
    await metrics.publish(_kvik(), _kvik(HelpChannel.PHONE), _mobile(SITE_ID))
    await metrics.wait_handled(handled + 3)
    await _count_at_desks(
        metrics,
        ContactCount(
            AT.date(),
            District.AMAGER_VEST,
            Channel.COUNTER,
            ContactMode.ASSISTED,
            "passport",
            entry_id=CENTRE,
            site_id=SITE_ID,
        ),
    )
    for period in ("day", "week", "month"):
        report = await _get(metrics, "/usage/entries", period=period, date="2024-01-15")
        for place in [*report["entries"], report["total"]]:
            assert place["contacts"] == _channel_sum(place)
            assert place["contacts"] == place["self_service"] + place["assisted"]
        assert report["total"]["contacts"] == 3  # the site-only mobile contact has no entry
        sites = await _get(metrics, "/usage/sites", period=period, date="2024-01-15")
        for site in sites["sites"]:
            assert site["contacts"] == _channel_sum(site) == 4
    only_kvik = await _get(metrics, "/usage/entries", channel="kvik", **WEEK)
    assert only_kvik["total"]["contacts"] == 2
    assert {e["entry_id"] for e in only_kvik["entries"]} == {ENTRY_ID}


async def test_the_ranking_puts_an_open_entry_without_contacts_among_the_least_used(
    metrics: Metrics,
) -> None:
    handled = await _islands_brygge(metrics)
    await metrics.publish(_kvik(), _kvik())
    await metrics.wait_handled(handled + 2)
    most = await _get(metrics, "/usage/entries/ranking", order="most", limit=1, **WEEK)
    assert [(e["entry_id"], e["contacts"]) for e in most["entries"]] == [(ENTRY_ID, 2)]
    least = await _get(metrics, "/usage/entries/ranking", order="least", limit=2, **WEEK)
    assert [e["entry_id"] for e in least["entries"]] == [CENTRE, JOBCENTRE]


async def test_one_entry_shows_its_contacts_per_service(metrics: Metrics) -> None:
    handled = await _islands_brygge(metrics)
    await metrics.publish(
        _kvik(),
        _kvik(),
        session(
            EventType.KVIK_SESSION_COMPLETED,
            entry_id=ENTRY_ID,
            district="amager-vest",
            service="change_of_address",
        ),
    )
    await metrics.wait_handled(handled + 3)
    detail = await _get(metrics, f"/usage/entries/{ENTRY_ID}", **WEEK)
    assert [(s["service"], s["contacts"]) for s in detail["services"]] == [
        ("passport", 2),
        ("change_of_address", 1),
    ]
    assert detail["contacts"] == 3
    missing = await metrics.client.get(
        "/usage/entries/entry-nowhere", params=WEEK, headers=metrics.reader
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/usage/entries", {"period": "fortnight", "date": "2024-01-15"}),
        ("/usage/entries", {"period": "week", "date": "15-01-2024"}),
        ("/usage/entries", {"period": "month", "date": "9999-12-15"}),  # no 10000-01-01
        ("/usage/entries/ranking", {"period": "week", "date": "0001-01-01"}),
        (f"/usage/entries/{ENTRY_ID}", {"period": "month", "date": "2024-02-30"}),
        ("/usage/entries/not an id", {"period": "week", "date": "2024-01-15"}),
        ("/usage/entries", {"period": "week", "date": "2024-01-15", "channel": "digital"}),
        ("/usage/sites", {"period": "week", "date": "2024-01-15", "district": "atlantis"}),
        ("/usage/entries/ranking", {"period": "week", "date": "2024-01-15", "limit": "0"}),
        ("/usage/entries/ranking", {"period": "week", "date": "2024-01-15", "order": "best"}),
    ],
)
async def test_bad_usage_queries_are_422_problems(
    metrics: Metrics, path: str, params: dict[str, str]
) -> None:
    response = await metrics.client.get(path, params=params, headers=metrics.reader)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "path",
    ["/usage/entries", "/usage/entries/ranking", f"/usage/entries/{ENTRY_ID}", "/usage/sites"],
)
async def test_usage_needs_the_metrics_read_role(metrics: Metrics, path: str) -> None:
    anonymous = await metrics.client.get(path, params=WEEK)
    ingester = await metrics.client.get(
        path, params=WEEK, headers=auth(metrics.settings, "metrics:ingest", subject=MANAGER)
    )
    assert (anonymous.status_code, ingester.status_code) == (401, 403)


async def _entry_series(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    response = await metrics.client.get("/metrics")
    return {
        (s.labels["entry_id"], s.labels["channel"], s.labels["mode"]): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == "kanalhub_entry_contacts_total"
    }


async def test_prometheus_has_a_bounded_per_entry_figure(hub_settings: HubSettings) -> None:
    async with running_metrics(hub_settings, prometheus_entries=1) as metrics:
        handled = await _islands_brygge(metrics)
        await metrics.publish(_kvik(), _kvik(), _mobile(SITE_ID))
        await metrics.wait_handled(handled + 3)
        await _count_at_desks(
            metrics,
            ContactCount(
                AT.date(),
                District.AMAGER_VEST,
                Channel.COUNTER,
                ContactMode.ASSISTED,
                "passport",
                entry_id=CENTRE,
                site_id=SITE_ID,
            ),
        )
        series = await _entry_series(metrics)
    # The busiest entry keeps its series; the centre (cap 1) goes into "other".
    assert series == {
        (ENTRY_ID, "kvik", "self_service"): 2,
        (ENTRY_ID, "kvik", "assisted"): 0,
        ("other", "counter", "assisted"): 1,
        ("none", "mobile", "assisted"): 1,
    }


async def test_rebuild_reproduces_the_usage_rollups(hub_settings: HubSettings) -> None:
    store = MetricsStore(hub_settings)

    async def usage_keys(metrics: Metrics) -> dict[Any, Any]:
        redis = metrics.runtime.redis
        return {
            key: await redis.hgetall(key)
            async for key in redis.scan_iter(match=store.key("usage", "*"))
        }

    async with running_metrics(hub_settings) as metrics:
        handled = await _islands_brygge(metrics)
        repeated = _kvik()
        events = [repeated, repeated, _kvik(HelpChannel.VIDEO), _mobile(SITE_ID), _mobile(None)]
        await metrics.publish(*events)
        await metrics.wait_handled(handled + len(events) - 1)
        before = await usage_keys(metrics)
    async with running_metrics(hub_settings) as metrics:
        assert await rebuild(MetricsSettings(hub=hub_settings)) == handled + len(events)
        assert await usage_keys(metrics) == before
    # day, week and month (cells and mix) and the totals
    assert len(before) == 7
