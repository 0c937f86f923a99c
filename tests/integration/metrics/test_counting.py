"""Events become contacts against the real broker and Valkey (docs/architecture.md, Counting
contacts)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contracts import (
    ContactMode,
    EventType,
    HelpChannel,
)
from services.metrics.events import handlers
from services.plumbing.consumer import Transaction
from tests.integration.metrics.builders import mobile_contact, report, session
from tests.integration.metrics.conftest import Metrics

pytestmark = pytest.mark.integration


async def test_kvik_sessions_and_a_mobile_contact_move_the_share_as_design_says(
    metrics: Metrics,
) -> None:
    await metrics.publish(
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE),
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.VIDEO),
        session(EventType.KVIK_SESSION_ABANDONED, help=HelpChannel.NONE),
        session(EventType.KVIK_SESSION_REFERRED, help=HelpChannel.NONE, referred_to="counter"),
        mobile_contact(ContactMode.SELF_SERVICE),
    )
    await metrics.wait_handled(5)
    share = await metrics.share(period="day", date="2024-01-15", district="valby")
    assert (share["self_service"], share["assisted"], share["total"]) == (2, 1, 3)
    assert share["share"] == pytest.approx(2 / 3)
    assert share["channels"]["kvik"] == {"self_service": 1, "assisted": 1}
    assert share["channels"]["mobile"] == {"self_service": 1, "assisted": 0}
    assert share["channels"]["counter"] == {"self_service": 0, "assisted": 0}


async def test_an_abandoned_session_is_no_contact_but_counts_in_the_kvik_funnel(
    metrics: Metrics,
) -> None:
    await metrics.publish(
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE),
        session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.PHONE),
        session(EventType.KVIK_SESSION_ABANDONED, help=HelpChannel.NONE),
    )
    await metrics.wait_handled(3)
    response = await metrics.client.get(
        "/kvik/funnel",
        params={"period": "month", "date": "2024-01-31", "district": "valby"},
        headers=metrics.reader,
    )
    assert response.status_code == 200, response.text
    funnel = response.json()
    assert (funnel["completed"], funnel["abandoned"]) == (2, 1)
    assert funnel["completion_rate"] == pytest.approx(2 / 3)
    assert funnel["abandonment_rate"] == pytest.approx(1 / 3)
    assert funnel["help_rate"] == 0.5
    assert (await metrics.share(period="day", date="2024-01-15"))["total"] == 2


async def test_an_event_delivered_twice_counts_once(metrics: Metrics) -> None:
    completed = session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE)
    later = session(
        EventType.KVIK_SESSION_COMPLETED,
        help=HelpChannel.NONE,
        session_id=completed.subject,  # same key, same partition: handled after the repeat
    )
    await metrics.publish(completed, completed, later)
    await metrics.wait_handled(2)
    share = await metrics.share(period="day", date="2024-01-15")
    assert share["self_service"] == 2


async def test_a_late_event_lands_on_its_own_copenhagen_day(metrics: Metrics) -> None:
    # A kiosk's backlog uploaded now: ended 23:30 UTC on 10 July = 11 July in Copenhagen.
    ended = dt.datetime(2024, 7, 10, 23, 30, tzinfo=dt.UTC)
    await metrics.publish(session(EventType.KVIK_SESSION_COMPLETED, at=ended, help="none"))
    await metrics.wait_handled(1)
    assert (await metrics.share(period="day", date="2024-07-11"))["total"] == 1
    assert (await metrics.share(period="day", date="2024-07-10"))["total"] == 0


async def test_two_reports_for_one_key_in_one_transaction_leave_the_last_figure(
    metrics: Metrics,
) -> None:
    # What the consumer does with a fetched batch: every handler on one MULTI pipeline.
    table = handlers(metrics.settings)
    redis = metrics.runtime.redis
    for reports in ([report(10, 5), report(7, 1)], [report(7, 1), report(8, 2)]):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.multi()  # type: ignore[no-untyped-call]
            tx = Transaction(pipe=pipe, redis=redis, outbox=metrics.runtime.outbox)
            for one in reports:
                await table[one.type](one, tx)
            await pipe.execute()
    share = await metrics.share(period="day", date="2024-01-15", district="norrebro")
    assert share["channels"]["digital"] == {"self_service": 8, "assisted": 2}


async def test_share_parameters_are_validated_with_a_problem(metrics: Metrics) -> None:
    response = await metrics.client.get(
        "/share",
        params={"period": "year", "date": "2024-13-01", "service": "Bad Code"},
        headers=metrics.reader,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"query.period", "query.date", "query.service"}


async def test_the_share_needs_the_metrics_read_role(metrics: Metrics) -> None:
    response = await metrics.client.get(
        "/share", params={"period": "day", "date": "2024-01-15"}, headers=metrics.ingester
    )
    assert response.status_code == 403


async def test_all_districts_are_answered_at_once(metrics: Metrics) -> None:
    await metrics.publish(session(EventType.KVIK_SESSION_COMPLETED, help=HelpChannel.NONE))
    await metrics.wait_handled(1)
    response = await metrics.client.get(
        "/share/districts", params={"period": "week", "date": "2024-01-17"}, headers=metrics.reader
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first_day"], body["last_day"]) == ("2024-01-15", "2024-01-21")
    by_district = {d["district"]: d for d in body["districts"]}
    assert len(by_district) == 10
    assert by_district["valby"]["share"] == 1.0
    assert by_district["osterbro"]["share"] is None
