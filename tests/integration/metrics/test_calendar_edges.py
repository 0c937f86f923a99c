"""No read of the metrics service answers 5xx for a date at the ends of the calendar: every
GET operation of its OpenAPI, with each of its date parameters set to an edge day (the others
valid), answers 200 or a 422 naming the parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings
from services.plumbing.settings import HubSettings
from tests.support.apps import running_app
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

EDGES = ("0001-01-01", "1969-12-31", "1970-01-01", "2999-12-31", "3000-01-01", "9999-12-31")
VALID = {"period": "week", "order": "most", "measure": "contacts", "limit": "5"}


@pytest.fixture
async def metrics(hub_settings: HubSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(MetricsSettings(hub=hub_settings))
    async with running_app(app, "metrics") as client:
        yield app, client


def _date_reads(app: FastAPI) -> list[tuple[str, list[dict[str, Any]]]]:
    """(path, parameters) of every GET operation that takes a date query parameter."""
    reads = []
    for path, operations in app.openapi()["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        parameters = [p for p in get.get("parameters", []) if p["in"] == "query"]
        if any(_is_date(p["schema"]) for p in parameters):
            reads.append((path, parameters))
    return reads


def _is_date(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(
        option.get("format") == "date" or option.get("items", {}).get("format") == "date"
        for option in options
    )


async def test_no_read_answers_5xx_for_a_day_at_the_ends_of_the_calendar(
    metrics: tuple[FastAPI, httpx.AsyncClient], hub_settings: HubSettings
) -> None:
    app, client = metrics
    headers = auth(hub_settings, "metrics:read", subject="reader")
    reads = _date_reads(app)
    assert len(reads) >= 8, reads  # share, districts, trend, forecast, funnel, kpis, usage, desk
    wrong = []
    for path, parameters in reads:
        for edge in EDGES:
            query = {
                p["name"]: edge if _is_date(p["schema"]) else VALID[p["name"]]
                for p in parameters
                if _is_date(p["schema"]) or p.get("required")
            }
            response = await client.get(path, params=query, headers=headers)
            if response.status_code >= 500:
                wrong.append(f"{path} {query}: {response.status_code}")
            elif response.status_code == 422:
                fields = {e["field"] for e in response.json().get("errors", [])}
                if not any(f.startswith("query.") for f in fields):
                    wrong.append(f"{path} {query}: 422 without naming the parameter {fields}")
            elif response.status_code != 200:
                wrong.append(f"{path} {query}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
