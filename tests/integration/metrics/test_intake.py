"""External intake against the real broker and Valkey: published as events, replace semantics,
every line validated and nothing applied on any error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.contracts import EventType, ServiceUpserted, new_event
from services.metrics.domain import today_in_copenhagen
from services.metrics.store import MetricsStore
from tests.integration.metrics.conftest import Metrics, copenhagen_yesterday

pytestmark = pytest.mark.integration

CATALOGUE = ("passport", "tax", "change_of_address")


@pytest.fixture(autouse=True)
async def catalogue(metrics: Metrics) -> None:
    """The registry's catalogue as the service knows it from registry events (set directly:
    how it gets there is ``test_the_catalogue_comes_from_registry_events``)."""
    store = MetricsStore(metrics.settings)
    async with metrics.runtime.redis.pipeline(transaction=True) as pipe:
        for code in CATALOGUE:
            store.set_service(pipe, code, general_needs=True)
        await pipe.execute()


def _intake(day: dt.date, *items: tuple[str, str, int, int]) -> dict[str, Any]:
    return {
        "source": "digital_platform",
        "day": day.isoformat(),
        "items": [
            {"district": d, "service": s, "self_service": self_, "assisted": assisted}
            for d, s, self_, assisted in items
        ],
    }


async def _post(metrics: Metrics, body: dict[str, Any]) -> dict[str, Any]:
    response = await metrics.client.post("/intake", json=body, headers=metrics.ingester)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_intake_moves_the_share_and_a_redelivery_or_correction_replaces(
    metrics: Metrics,
) -> None:
    day = copenhagen_yesterday()
    query = {"period": "day", "date": day.isoformat(), "district": "valby"}
    first = _intake(day, ("valby", "passport", 90, 10), ("valby", "tax", 5, 5))
    assert await _post(metrics, first) == {"lines": 2}
    await metrics.wait_handled(2)
    share = await metrics.share(**query)
    assert (share["self_service"], share["assisted"], share["share"]) == (95, 15, 95 / 110)
    assert share["channels"]["digital"] == {"self_service": 95, "assisted": 15}

    await _post(metrics, first)
    await metrics.wait_handled(4)
    assert await metrics.share(**query) == share

    await _post(metrics, _intake(day, ("valby", "passport", 60, 40)))
    await metrics.wait_handled(5)
    corrected = await metrics.share(**query)
    assert (corrected["self_service"], corrected["assisted"]) == (65, 45)


async def test_bad_intake_lines_are_named_and_nothing_is_published(metrics: Metrics) -> None:
    tomorrow = today_in_copenhagen() + dt.timedelta(days=1)
    body = _intake(
        copenhagen_yesterday(),
        ("valby", "passport", 1, 1),
        ("atlantis", "passport", 1, 1),
        ("valby", "Not A Code", 1, 1),
        ("valby", "tax", -1, 1_000_001),
    )
    response = await metrics.client.post("/intake", json=body, headers=metrics.ingester)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == [
        "body.items[1].district",
        "body.items[2].service",
        "body.items[3].assisted",
        "body.items[3].self_service",
    ]
    later = _intake(tomorrow, ("valby", "passport", 1, 1), ("valby", "passport", 2, 2))
    response = await metrics.client.post("/intake", json=later, headers=metrics.ingester)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["body.day", "body.items[1]"]
    assert await metrics.nothing_staged()


async def test_intake_needs_the_metrics_ingest_role(metrics: Metrics) -> None:
    body = _intake(copenhagen_yesterday(), ("valby", "passport", 1, 1))
    response = await metrics.client.post("/intake", json=body, headers=metrics.reader)
    assert response.status_code == 403


async def test_a_csv_intake_moves_the_share_like_a_json_one(metrics: Metrics) -> None:
    day = copenhagen_yesterday()
    csv_body = "district,service,self_service,assisted\nosterbro,passport,30,10\n"
    response = await metrics.client.post(
        "/intake/csv",
        params={"source": "contact_centre", "day": day.isoformat()},
        content=csv_body.encode(),
        headers={**metrics.ingester, "Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    await metrics.wait_handled(1)
    share = await metrics.share(period="day", date=day.isoformat(), district="osterbro")
    assert share["channels"]["phone"] == {"self_service": 30, "assisted": 10}


async def test_a_csv_with_a_duplicate_line_is_refused_naming_the_file_line(
    metrics: Metrics,
) -> None:
    csv_body = (
        "district,service,self_service,assisted\n"
        "valby,passport,1,1\natlantis,tax,1,1\nvalby,passport,2,2\n"
    )
    response = await metrics.client.post(
        "/intake/csv",
        params={"source": "contact_centre", "day": copenhagen_yesterday().isoformat()},
        content=csv_body.encode(),
        headers={**metrics.ingester, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["line 3.district", "line 4"]
    assert await metrics.nothing_staged()


async def test_the_catalogue_comes_from_registry_events(metrics: Metrics) -> None:
    day = copenhagen_yesterday()
    body = _intake(day, ("valby", "digital_post", 3, 1))
    refused = await metrics.client.post("/intake", json=body, headers=metrics.ingester)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.items[0].service"
    upserted = new_event(
        EventType.REGISTRY_SERVICE_UPSERTED,
        ServiceUpserted(code="digital_post", version=1, name="Digital Post", general_needs=True),
        source="/kanalhub/registry",
    )
    await metrics.publish(upserted)
    await metrics.wait_handled(1)
    assert await _post(metrics, body) == {"lines": 1}
