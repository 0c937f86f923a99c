"""Unknown query parameters across every service: each operation of each service's OpenAPI
document, and the routes outside it, answer a parameter they do not take with 400
problem+json naming it, and stage nothing; a single-valued parameter given twice is refused the
same way; declared parameters still work.

The operations come from each app's OpenAPI document, so a new endpoint is covered the day it
is added. The requests carry no token: the guard answers before authentication runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.query_guard import PROBLEM_SLUG
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, running_service, staged
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

UNKNOWN = "kanalhub_unknown"
OUTSIDE_THE_DOCUMENT = ("/docs", "/redoc", "/openapi.json")
"""FastAPI's own pages: they take no query parameter either."""
DECLARED_OK = {
    "registry": ("/entries?district=valby&kind=kvik_point", None),
    "kvik": ("/healthz", None),
    "mobile": ("/healthz", None),
    "metrics": ("/export/counting-weeks.csv?week=2024-01-01&week=2024-01-08", "metrics:read"),
}
"""Per service, a request with declared parameters (a list one repeated, for metrics) that must
still answer 200, and the role it needs."""


@pytest.fixture(params=list(SERVICES))
async def service(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name = request.param
    async with running_service(name, hub_settings) as (app, client):
        yield name, app, client


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation, path parameters filled with ``x-1``."""
    return [
        (method, re.sub(r"\{[^}]+\}", "x-1", path), operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def _refusal(response: httpx.Response) -> dict[str, str] | str:
    """The refusal's errors by field, or what is wrong with the answer."""
    media = response.headers.get("content-type", "")
    if response.status_code != 400 or not media.startswith(PROBLEM_MEDIA_TYPE):
        return f"{response.status_code} {media}"
    body = response.json()
    if not body.get("type", "").endswith(PROBLEM_SLUG):
        return f"400 of another kind: {body.get('type')}"
    return {error["field"]: error["message"] for error in body["errors"]}


async def test_every_operation_refuses_an_unknown_query_parameter_naming_it(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, app, client = service
    before = await staged(app)
    operations = _operations(app)
    assert any(method == "get" for method, _, _ in operations), f"{name}: no GET operation?"
    wrong = []
    for method, path, _ in operations:
        response = await client.request(method, path, params={UNKNOWN: "1"})
        refusal = _refusal(response)
        if not isinstance(refusal, dict) or list(refusal) != [f"query.{UNKNOWN}"]:
            wrong.append(f"{method.upper()} {path}: {refusal}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)
    assert await staged(app) == before


async def test_routes_outside_the_document_refuse_unknown_query_parameters_too(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, _, client = service
    paths = [*OUTSIDE_THE_DOCUMENT, *(["/"] if name == "metrics" else [])]
    wrong = []
    for path in paths:
        refusal = _refusal(await client.get(path, params={UNKNOWN: "1"}))
        if not isinstance(refusal, dict) or list(refusal) != [f"query.{UNKNOWN}"]:
            wrong.append(f"GET {path}: {refusal}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


async def test_a_single_valued_parameter_given_twice_is_refused_naming_it(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, app, client = service
    # The first GET operation with a single-valued query parameter, from the document.
    candidates = [
        (path, parameter["name"])
        for method, path, operation in _operations(app)
        if method == "get"
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter.get("schema", {}).get("type") != "array"
    ]
    assert candidates, f"{name}: no GET operation with a query parameter?"
    path, parameter = candidates[0]
    response = await client.get(f"{path}?{parameter}=1&{parameter}=2")
    refusal = _refusal(response)
    assert isinstance(refusal, dict), f"{name} GET {path}: {refusal}"
    assert refusal == {f"query.{parameter}": "Given 2 times; this parameter takes a single value"}


async def test_declared_parameters_still_answer_200(
    service: tuple[str, FastAPI, httpx.AsyncClient], hub_settings: HubSettings
) -> None:
    name, _, client = service
    path, role = DECLARED_OK[name]
    headers = auth(hub_settings, role, subject="t") if role else {}
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
