"""Desk tickets against the real broker and Valkey: the live feed and the day file are published
as events and counted (counter share, desk figures, Prometheus), a ticket counts once, a file
replaces the entry's earlier file of its day, bad input stages nothing, and rebuild reproduces
every desk aggregate."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.contracts import (
    EntryKind,
    EntryUpserted,
    EventType,
    HelpChannel,
    ServiceUpserted,
    new_event,
)
from services.metrics import desk_csv
from services.metrics.commands import rebuild
from services.metrics.domain import today_in_copenhagen
from services.metrics.settings import MetricsSettings
from services.metrics.store import MetricsStore
from services.plumbing.settings import HubSettings
from tests.integration.metrics.builders import payload
from tests.integration.metrics.conftest import MANAGER, Metrics, running_metrics
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

CPH = ZoneInfo("Europe/Copenhagen")
CENTRE = "bsc-valby"
CATALOGUE = ("passport", "tax")


def _entry(entry_id: str = CENTRE, **changes: Any) -> EntryUpserted:
    fields: dict[str, Any] = {
        "entry_id": entry_id,
        "site_id": "site-valby-medborgerhus",
        "name": "Borgerservice Valby",
        "kind": EntryKind.CITIZEN_SERVICE_CENTRE,
        "district": "valby",
        "services": CATALOGUE,
        "staff_help": (HelpChannel.IN_PERSON,),
    }
    data = payload(EventType.REGISTRY_ENTRY_UPSERTED, **{**fields, **changes})
    assert isinstance(data, EntryUpserted)
    return data


OTHER_ENTRIES = (
    _entry("kvik-vanlose", kind=EntryKind.KVIK_POINT, staff_help=(HelpChannel.VIDEO,)),
    _entry("library-desk-sundby", kind=EntryKind.LIBRARY, district="amager-vest"),
    _entry("bsc-closed"),
)


async def _registry(metrics: Metrics) -> None:
    """The registry copy as the service knows it from registry events (set directly; how it
    gets there is tested with the registry copy)."""
    store = MetricsStore(metrics.settings)
    async with metrics.runtime.redis.pipeline(transaction=True) as pipe:
        for code in CATALOGUE:
            store.set_service(pipe, code, general_needs=True)
        for entry in (_entry(), *OTHER_ENTRIES):
            store.upsert_entry(pipe, entry)
        store.retire_entry(pipe, "bsc-closed", 99)
        await pipe.execute()


@pytest.fixture
async def desk(metrics: Metrics) -> Metrics:
    """The metrics app with the registry copy, and ``desk`` headers for ``metrics:desk``."""
    await _registry(metrics)
    return metrics


def _desk_headers(metrics: Metrics) -> dict[str, str]:
    return auth(metrics.settings, "metrics:desk", subject=MANAGER)


DAY = today_in_copenhagen() - dt.timedelta(days=1)


def _at(minutes: float) -> str:
    """``minutes`` after 10:00 on DAY, Copenhagen time, as ISO 8601 with offset."""
    start = dt.datetime.combine(DAY, dt.time(10, 0), CPH)
    return (start + dt.timedelta(minutes=minutes)).isoformat()


def served(
    ticket_id: str, wait: float = 12, service_time: float = 8, start: float = 0, **changes: Any
) -> dict[str, Any]:
    """A served ticket issued ``start`` minutes after 10:00, waiting ``wait`` minutes and
    served ``service_time`` minutes from the call."""
    ticket = {
        "ticket_id": ticket_id,
        "service": "passport",
        "desk_id": "desk-04",
        "staff_id": "staff-a1b2c3",
        "issued_at": _at(start),
        "called_at": _at(start + wait),
        "served_at": _at(start + wait + 1),
        "ended_at": _at(start + wait + service_time),
        "outcome": "served",
    }
    return {**ticket, **changes}


def after_midnight(ticket_id: str) -> dict[str, Any]:
    """A ticket issued at 23:50 on DAY that ended at 00:10 the next day."""
    return served(ticket_id, start=13 * 60 + 50, wait=5, service_time=15)


def no_show(ticket_id: str, wait: float = 30, **changes: Any) -> dict[str, Any]:
    ticket = {
        "ticket_id": ticket_id,
        "service": "passport",
        "desk_id": None,
        "staff_id": None,
        "issued_at": _at(0),
        "called_at": _at(wait),
        "served_at": None,
        "ended_at": _at(wait + 3),
        "outcome": "no_show",
    }
    return {**ticket, **changes}


async def _put_ticket(
    metrics: Metrics,
    ticket: dict[str, Any],
    entry_id: str = CENTRE,
    headers: dict[str, str] | None = None,
    path_id: str | None = None,
) -> Any:
    """PUT a live ticket, at its own id unless ``path_id`` is given."""
    return await metrics.client.put(
        f"/desk/entries/{entry_id}/tickets/{path_id or ticket['ticket_id']}",
        json=ticket,
        headers=_desk_headers(metrics) if headers is None else headers,
    )


async def _put_day(
    metrics: Metrics, tickets: list[dict[str, Any]], entry_id: str = CENTRE, **extra: Any
) -> Any:
    return await metrics.client.put(
        f"/desk/entries/{entry_id}/days/{DAY.isoformat()}",
        json={"tickets": tickets, **extra},
        headers=_desk_headers(metrics),
    )


def _csv(tickets: list[dict[str, Any]]) -> bytes:
    columns = desk_csv.CSV_COLUMNS
    lines = [",".join(columns)]
    lines += [",".join(ticket[c] or "" for c in columns) for ticket in tickets]
    return ("\n".join(lines) + "\n").encode()


async def _put_csv(metrics: Metrics, body: bytes, entry_id: str = CENTRE, **params: str) -> Any:
    return await metrics.client.put(
        f"/desk/entries/{entry_id}/days/{DAY.isoformat()}/csv",
        content=body,
        params=params,
        headers={**_desk_headers(metrics), "Content-Type": "text/csv"},
    )


async def _times(metrics: Metrics, **params: str) -> dict[str, Any]:
    response = await metrics.client.get(
        "/desk/times",
        params={"period": "day", "date": DAY.isoformat(), **params},
        headers=metrics.reader,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _counter(metrics: Metrics) -> dict[str, int]:
    share = await metrics.share(period="day", date=DAY.isoformat(), district="valby")
    counter: dict[str, int] = share["channels"]["counter"]
    return counter


# -- the live feed -------------------------------------------------------------------------------


async def test_a_served_ticket_moves_the_counter_share_of_its_district(desk: Metrics) -> None:
    response = await _put_ticket(desk, served("q-0001"))
    assert response.status_code == 201, response.text
    assert response.json() == {
        "entry_id": CENTRE,
        "ticket_id": "q-0001",
        "outcome": "served",
        "day": DAY.isoformat(),
    }
    await desk.wait_handled(1)
    assert await _counter(desk) == {"self_service": 0, "assisted": 1}
    elsewhere = await desk.share(period="day", date=DAY.isoformat(), district="norrebro")
    assert elsewhere["total"] == 0


async def _entry_usage(metrics: Metrics) -> tuple[str | None, dict[str, int]]:
    """The centre's site and counter contacts on DAY, as GET /usage/entries/{id} reports them."""
    response = await metrics.client.get(
        f"/usage/entries/{CENTRE}",
        params={"period": "day", "date": DAY.isoformat()},
        headers=metrics.reader,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["site_id"], body["channels"]["counter"]


async def test_a_served_ticket_moves_its_entrys_usage_and_a_no_show_does_not(
    desk: Metrics,
) -> None:
    assert (await _put_ticket(desk, served("q-0101"))).status_code == 201
    assert (await _put_ticket(desk, no_show("q-0102"))).status_code == 201
    await desk.wait_handled(2)
    site, counter = await _entry_usage(desk)
    assert site == "site-valby-medborgerhus"
    assert counter == {"self_service": 0, "assisted": 1, "total": 1}


async def test_a_day_file_replaces_the_entrys_usage_too(desk: Metrics) -> None:
    assert (await _put_day(desk, [served("q-1"), served("q-2"), served("q-3")])).status_code == 202
    await desk.wait_handled(1)
    assert (await _entry_usage(desk))[1]["total"] == 3
    assert (await _put_day(desk, [served("q-9")])).status_code == 202
    await desk.wait_handled(2)
    assert (await _entry_usage(desk))[1] == {"self_service": 0, "assisted": 1, "total": 1}


async def test_a_no_show_counts_as_no_contact_but_as_a_no_show(desk: Metrics) -> None:
    assert (await _put_ticket(desk, no_show("q-0002"))).status_code == 201
    await desk.wait_handled(1)
    assert await _counter(desk) == {"self_service": 0, "assisted": 0}
    [centre] = (await _times(desk))["centres"]
    assert (centre["total"]["served"], centre["total"]["no_shows"]) == (0, 1)
    assert centre["total"]["no_show_rate"] == 1.0


async def test_the_same_ticket_twice_counts_once(desk: Metrics) -> None:
    ticket = served("q-0003")
    first = await _put_ticket(desk, ticket)
    assert first.status_code == 201
    again = await _put_ticket(desk, ticket)
    assert (again.status_code, again.json()) == (200, first.json())
    # the same ticket written with UTC offsets and without its (optional) id in the body
    in_utc = {
        k: dt.datetime.fromisoformat(v).astimezone(dt.UTC).isoformat()
        if k.endswith("_at") and v
        else v
        for k, v in ticket.items()
        if k != "ticket_id"
    }
    retried = await desk.client.put(
        f"/desk/entries/{CENTRE}/tickets/q-0003", json=in_utc, headers=_desk_headers(desk)
    )
    assert retried.status_code == 200, retried.text
    await desk.wait_handled(1)
    info = await desk.runtime.redis.xinfo_stream(desk.runtime.outbox.stream)
    assert info["entries-added"] == 1  # one event staged, for the first request only
    assert await _counter(desk) == {"self_service": 0, "assisted": 1}


async def test_a_different_ticket_under_a_known_id_is_a_409(desk: Metrics) -> None:
    assert (await _put_ticket(desk, served("q-0004"))).status_code == 201
    changed = await _put_ticket(desk, served("q-0004", service_time=20))
    assert changed.status_code == 409
    assert changed.headers["content-type"] == "application/problem+json"
    assert changed.json()["type"].endswith("/ticket-conflict")
    info = await desk.runtime.redis.xinfo_stream(desk.runtime.outbox.stream)
    assert info["entries-added"] == 1


# -- the day file --------------------------------------------------------------------------------


async def test_a_day_file_replaces_the_earlier_file_of_the_entry_and_day(desk: Metrics) -> None:
    first = [served("q-1"), served("q-2"), served("q-3", service="tax"), no_show("q-4")]
    response = await _put_day(desk, first, district="valby")
    assert response.status_code == 202, response.text
    assert response.json() == {
        "entry_id": CENTRE,
        "day": DAY.isoformat(),
        "tickets": 4,
        "served": 3,
        "no_shows": 1,
    }
    await desk.wait_handled(1)
    assert await _counter(desk) == {"self_service": 0, "assisted": 3}

    second = [served("q-9", service="tax", wait=40, service_time=4)]
    assert (await _put_day(desk, second)).status_code == 202
    await desk.wait_handled(2)
    after_second = (await _counter(desk), await _times(desk))

    # The second file alone, at another prefix: the figures must be the same.
    alone_settings = desk.settings.model_copy(
        update={
            "key_prefix": desk.settings.key_prefix + "b",
            "topic_suffix": desk.settings.topic_suffix + "b",
        }
    )
    async with running_metrics(alone_settings) as alone:
        await _registry(alone)
        assert (await _put_day(alone, second)).status_code == 202
        await alone.wait_handled(1)
        assert after_second == (await _counter(alone), await _times(alone))
    [centre] = after_second[1]["centres"]
    assert [line["service"] for line in centre["services"]] == ["tax"]


async def test_a_csv_day_file_counts_like_a_json_one(desk: Metrics) -> None:
    tickets = [served("q-1"), no_show("q-2", service="tax")]
    response = await _put_csv(desk, _csv(tickets), district="valby")
    assert response.status_code == 202, response.text
    assert (response.json()["served"], response.json()["no_shows"]) == (1, 1)
    await desk.wait_handled(1)
    assert await _counter(desk) == {"self_service": 0, "assisted": 1}
    [centre] = (await _times(desk))["centres"]
    assert (centre["total"]["served"], centre["total"]["no_shows"]) == (1, 1)


async def test_a_day_taken_live_refuses_a_file_and_the_other_way_round(desk: Metrics) -> None:
    assert (await _put_ticket(desk, served("q-1"))).status_code == 201
    refused = await _put_day(desk, [served("q-2")])
    assert refused.status_code == 409
    assert "live feed" in refused.json()["detail"]

    other = OTHER_ENTRIES[1].entry_id  # a library with an in-person desk, another district
    day_file = [served("q-3")]
    assert (await _put_day(desk, day_file, entry_id=other)).status_code == 202
    live = await _put_ticket(desk, served("q-4"), entry_id=other)
    assert live.status_code == 409
    assert "day file" in live.json()["detail"]
    info = await desk.runtime.redis.xinfo_stream(desk.runtime.outbox.stream)
    assert info["entries-added"] == 2


# -- figures -------------------------------------------------------------------------------------


async def test_waiting_and_service_times_per_centre_and_service(desk: Metrics) -> None:
    # passport: waits 4, 4, 8, 8 minutes (buckets (120, 300] and (300, 600]); service times
    # 2.5 min each (bucket (120, 180]). tax: one ticket, wait 50 min, service 15 min.
    day = [
        served("q-1", wait=4, service_time=2.5),
        served("q-2", wait=4, service_time=2.5, start=1),
        served("q-3", wait=8, service_time=2.5, start=2),
        served("q-4", wait=8, service_time=2.5, start=3),
        served("q-5", service="tax", wait=50, service_time=15),
        no_show("q-6", wait=8),
    ]
    assert (await _put_day(desk, day)).status_code == 202
    await desk.wait_handled(1)
    body = await _times(desk)
    [centre] = body["centres"]
    assert (centre["entry_id"], centre["name"], centre["district"]) == (
        CENTRE,
        "Borgerservice Valby",
        "valby",
    )
    passport, tax = centre["services"]
    assert (passport["service"], passport["served"], passport["no_shows"]) == ("passport", 4, 1)
    waiting = passport["waiting"]
    # 5 called tickets: 2 in (120, 300], 3 in (300, 600]; mean (4+4+8+8+8)/5 = 6.4 min
    assert waiting["count"] == 5
    assert waiting["mean_seconds"] == pytest.approx(384)
    assert waiting["p50_seconds"] == pytest.approx(300 + 300 * (2.5 - 2) / 3)
    assert waiting["p90_seconds"] == pytest.approx(300 + 300 * (4.5 - 2) / 3)
    service_time = passport["service_time"]
    assert (service_time["count"], service_time["mean_seconds"]) == (4, pytest.approx(150))
    assert service_time["p50_seconds"] == pytest.approx(120 + 60 * 0.5)
    assert (tax["served"], tax["waiting"]["mean_seconds"]) == (1, pytest.approx(3000))
    total = centre["total"]
    assert (total["service"], total["served"], total["no_shows"]) == (None, 5, 1)
    assert total["no_show_rate"] == pytest.approx(1 / 6)
    assert total["waiting"]["count"] == 6
    only_tax = await _times(desk, service="tax", entry_id=CENTRE)
    assert [s["service"] for s in only_tax["centres"][0]["services"]] == ["tax"]
    week = await _times(desk, period="week")
    assert week["centres"][0]["total"] == total


async def test_prometheus_has_desk_tickets_and_time_histograms_per_entry(desk: Metrics) -> None:
    day = [served("q-1", wait=4, service_time=2.5), no_show("q-2", wait=8)]
    assert (await _put_day(desk, day)).status_code == 202
    await desk.wait_handled(1)
    text = (await desk.client.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("kanalhub_desk_")
        for s in family.samples
    }
    entry = ("entry_id", CENTRE)
    assert samples[("kanalhub_desk_tickets_total", (entry, ("outcome", "served")))] == 1
    assert samples[("kanalhub_desk_tickets_total", (entry, ("outcome", "no_show")))] == 1
    assert samples[("kanalhub_desk_wait_seconds_bucket", (entry, ("le", "300.0")))] == 1
    assert samples[("kanalhub_desk_wait_seconds_bucket", (entry, ("le", "600.0")))] == 2
    assert samples[("kanalhub_desk_wait_seconds_count", (entry,))] == 2
    assert samples[("kanalhub_desk_wait_seconds_sum", (entry,))] == pytest.approx(720)
    assert samples[("kanalhub_desk_service_seconds_count", (entry,))] == 1
    assert samples[("kanalhub_desk_service_seconds_sum", (entry,))] == pytest.approx(150)


# -- bad input -----------------------------------------------------------------------------------

FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()


def _ticket_cases() -> list[tuple[str, str, dict[str, Any], int, str | None]]:
    """(name, entry, body, status, field named) of bad live tickets."""
    good = served("q-bad")
    return [
        ("unknown entry", "bsc-atlantis", good, 404, None),
        ("retired entry", "bsc-closed", good, 422, "path.entry_id"),
        ("no desks", "kvik-vanlose", good, 422, "path.entry_id"),
        ("service not in catalogue", CENTRE, {**good, "service": "moon_visa"}, 422, "body.service"),
        (
            "served before issued",
            CENTRE,
            {**good, "served_at": _at(-5)},
            422,
            "body.served_at",
        ),
        ("called before issued", CENTRE, {**good, "called_at": _at(-1)}, 422, "body.called_at"),
        ("ended before served", CENTRE, {**good, "ended_at": _at(12.5)}, 422, "body.ended_at"),
        ("served without a call", CENTRE, {**good, "called_at": None}, 422, "body.called_at"),
        ("no-show served", CENTRE, {**good, "outcome": "no_show"}, 422, "body.served_at"),
        ("ended in the future", CENTRE, {**good, "ended_at": FUTURE}, 422, "body.ended_at"),
        (
            "desk id is a CPR number",
            CENTRE,
            {**good, "desk_id": "010203-1234"},
            422,
            "body.desk_id",
        ),
        (
            "staff id is a CPR number",
            CENTRE,
            {**good, "staff_id": "staff-0102031234"},
            422,
            "body.staff_id",
        ),
        ("body id differs", CENTRE, {**good, "ticket_id": "q-other"}, 422, "body.ticket_id"),
        ("bool for a string", CENTRE, {**good, "desk_id": True}, 422, "body.desk_id"),
        ("number for a time", CENTRE, {**good, "issued_at": 1705305600}, 422, "body.issued_at"),
        (
            "digits for a time",
            CENTRE,
            {**good, "issued_at": "1705305600"},
            422,
            "body.issued_at",
        ),
        ("time without offset", CENTRE, {**good, "ended_at": _at(20)[:19]}, 422, "body.ended_at"),
        ("unknown field", CENTRE, {**good, "citizen": "x"}, 422, "body.citizen"),
        (
            "too old for the live feed",
            CENTRE,
            {
                **good,
                **{
                    name: (dt.datetime.fromisoformat(good[name]) - dt.timedelta(days=9)).isoformat()
                    for name in ("issued_at", "called_at", "served_at", "ended_at")
                },
            },
            422,
            "body.ended_at",
        ),
    ]


async def test_bad_live_tickets_are_refused_by_name_and_stage_nothing(desk: Metrics) -> None:
    wrong = []
    for name, entry_id, body, status, field in _ticket_cases():
        response = await _put_ticket(desk, body, entry_id=entry_id, path_id="q-bad")
        fields = [e["field"] for e in response.json().get("errors", [])]
        if (
            response.status_code != status
            or response.headers["content-type"] != "application/problem+json"
            or (field is not None and field not in fields)
        ):
            wrong.append(f"{name}: {response.status_code} {fields}")
        assert "010203" not in response.text
        assert "0102031234" not in response.text
    assert not wrong, "\n".join(wrong)
    assert await desk.nothing_staged()


async def test_a_cpr_number_as_the_ticket_id_in_the_path_is_a_422(desk: Metrics) -> None:
    ticket = {k: v for k, v in served("x").items() if k != "ticket_id"}
    response = await desk.client.put(
        f"/desk/entries/{CENTRE}/tickets/0102031234", json=ticket, headers=_desk_headers(desk)
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["path.ticket_id"]
    assert await desk.nothing_staged()


async def test_bad_day_files_are_refused_naming_the_ticket_and_stage_nothing(
    desk: Metrics,
) -> None:
    tickets = [
        served("q-1"),
        after_midnight("q-2"),
        served("q-3", service="moon_visa"),
        served("q-1", start=5),
    ]
    response = await _put_day(desk, tickets)
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json()["errors"]) == [
        "body.tickets[1].ended_at",
        "body.tickets[2].service",
        "body.tickets[3].ticket_id",
    ]
    # A CPR-shaped value is refused as the body is parsed (the edge model's guard), before
    # the file is checked as a whole: it is named on its own.
    personal = await _put_day(desk, [*tickets, served("q-5", desk_id="010203-1234")])
    assert personal.status_code == 422
    assert [e["field"] for e in personal.json()["errors"]] == ["body.tickets[4].desk_id"]
    another_district = await _put_day(desk, [served("q-1")], district="norrebro")
    assert another_district.status_code == 422
    assert [e["field"] for e in another_district.json()["errors"]] == ["body.district"]
    tomorrow = today_in_copenhagen() + dt.timedelta(days=1)
    future = await desk.client.put(
        f"/desk/entries/{CENTRE}/days/{tomorrow.isoformat()}",
        json={"tickets": []},
        headers=_desk_headers(desk),
    )
    assert (future.status_code, future.json()["errors"][0]["field"]) == (422, "path.day")
    number_day = await desk.client.put(
        f"/desk/entries/{CENTRE}/days/1705276800", json={"tickets": []}, headers=_desk_headers(desk)
    )
    assert number_day.status_code == 422
    too_many = await _put_day(desk, [served(f"q-{n}") for n in range(2001)])
    assert too_many.status_code == 422
    assert await desk.nothing_staged()


async def test_a_bad_csv_day_file_names_the_line_of_the_file(desk: Metrics) -> None:
    body = _csv([served("q-1"), after_midnight("q-2"), served("q-1", start=3)])
    response = await _put_csv(desk, body)
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["line 3.ended_at", "line 4.ticket_id"]
    header = await _put_csv(desk, b"id,service\nq-1,passport\n")
    assert [e["field"] for e in header.json()["errors"]] == ["line 1"]
    district = await _put_csv(desk, _csv([served("q-1")]), district="osterbro")
    assert [e["field"] for e in district.json()["errors"]] == ["query.district"]
    assert await desk.nothing_staged()


async def test_malformed_json_is_a_400_and_an_oversized_file_a_413(desk: Metrics) -> None:
    headers = {**_desk_headers(desk), "Content-Type": "application/json"}
    response = await desk.client.put(
        f"/desk/entries/{CENTRE}/tickets/q-1", content=b'{"service": ', headers=headers
    )
    assert (response.status_code, response.headers["content-type"]) == (
        400,
        "application/problem+json",
    )
    huge = b"x" * (50 * 1024 * 1024)
    response = await desk.client.put(
        f"/desk/entries/{CENTRE}/days/{DAY.isoformat()}/csv",
        content=huge,
        headers={**_desk_headers(desk), "Content-Type": "text/csv"},
    )
    assert response.status_code == 413
    assert await desk.nothing_staged()


async def test_desk_writes_need_the_metrics_desk_role(desk: Metrics) -> None:
    ingest = auth(desk.settings, "metrics:ingest", subject=MANAGER)
    for headers, status in (({}, 401), (ingest, 403), (desk.reader, 403)):
        live = await _put_ticket(desk, served("q-1"), headers=headers)
        day_file = await desk.client.put(
            f"/desk/entries/{CENTRE}/days/{DAY.isoformat()}",
            json={"tickets": [served("q-1")]},
            headers=headers,
        )
        assert (live.status_code, day_file.status_code) == (status, status)
    times = await desk.client.get(
        "/desk/times",
        params={"period": "day", "date": DAY.isoformat()},
        headers=_desk_headers(desk),
    )
    assert times.status_code == 403
    assert await desk.nothing_staged()


# -- rebuild -------------------------------------------------------------------------------------


async def _desk_aggregates(store: MetricsStore, metrics: Metrics) -> dict[Any, Any]:
    redis = metrics.runtime.redis
    snapshot: dict[Any, Any] = {}
    for pattern in store.aggregate_patterns():
        if pattern.endswith(("seen:*", "share:*")):
            continue
        async for key in redis.scan_iter(match=pattern):
            snapshot[key] = await redis.hgetall(key)
    return snapshot


async def test_rebuild_reproduces_every_desk_aggregate_exactly(hub_settings: HubSettings) -> None:
    store = MetricsStore(hub_settings)
    # no district-share event in the log while the test runs: the replay count is exact
    async with running_metrics(hub_settings, share_event_interval_seconds=3600) as metrics:
        registry = [
            new_event(EventType.REGISTRY_ENTRY_UPSERTED, entry, source="/kanalhub/registry")
            for entry in (_entry(), OTHER_ENTRIES[1])
        ] + [
            new_event(
                EventType.REGISTRY_SERVICE_UPSERTED,
                ServiceUpserted(code=code, version=1, name=code.title(), general_needs=True),
                source="/kanalhub/registry",
            )
            for code in CATALOGUE
        ]
        await metrics.publish(*registry)
        await metrics.wait_handled(len(registry))
        assert (await _put_ticket(metrics, served("q-1"))).status_code == 201
        assert (await _put_ticket(metrics, served("q-1"))).status_code == 200
        assert (await _put_ticket(metrics, no_show("q-2"))).status_code == 201
        library = OTHER_ENTRIES[1].entry_id
        files = [
            [served("q-3"), served("q-4", service="tax"), no_show("q-5")],
            [served("q-3", wait=30), served("q-6", service="tax", service_time=45)],
        ]
        for tickets in files:
            assert (await _put_day(metrics, tickets, entry_id=library)).status_code == 202
        await metrics.wait_handled(len(registry) + 4)
        before = await _desk_aggregates(store, metrics)
    async with running_metrics(hub_settings, share_event_interval_seconds=3600) as metrics:
        replayed = await rebuild(MetricsSettings(hub=hub_settings))
        assert replayed == len(registry) + 4
        assert await _desk_aggregates(store, metrics) == before
    desk_keys = [key for key in before if b":desk:" in key]
    assert {key.split(b":")[2] for key in desk_keys} == {b"desk"}
    assert len(desk_keys) >= 3  # the day's figures, the totals and the file contributions
    contribution = before[store.key("desk", "file", DAY.isoformat()).encode()]
    assert json.loads(contribution[library.encode()])  # the second file's part, kept
