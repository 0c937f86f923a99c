"""405 across every service: for every path of each service's OpenAPI document, a method the
path does not serve answers 405 problem+json whose ``Allow`` lists exactly the methods the
document gives the path (and those of any other path template the same URL falls under, as
``/entries/nearest`` falls under ``/entries/{entry_id}``), and stages nothing.

The services do not serve ``HEAD`` (FastAPI's routes do not add it to ``GET``), so it is never
listed, and a ``HEAD`` request is one of the methods refused.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, fill, running_service, staged

pytestmark = pytest.mark.integration

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(params=list(SERVICES))
async def service(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name = request.param
    async with running_service(name, hub_settings) as (app, client):
        yield name, app, client


def _template(path: str) -> re.Pattern[str]:
    """A path template of the document as the router matches it (a parameter is one segment)."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


def _served(document: dict[str, dict[str, object]], url: str) -> set[str]:
    """The methods the document serves at ``url``, over every template it falls under."""
    return {
        method.upper()
        for path, item in document.items()
        if _template(path).fullmatch(url)
        for method in item
    }


async def test_every_path_refuses_a_method_it_does_not_serve_with_the_right_allow(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    name, app, client = service
    paths = app.openapi()["paths"]
    before = await staged(app)
    wrong = []
    for path in paths:
        url = fill(path)
        served = _served(paths, url)
        for method in (m for m in METHODS if m not in served):
            response = await client.request(method, url)
            allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            media = response.headers.get("content-type", "")
            if response.status_code != 405 or allow != served:
                wrong.append(f"{method} {path}: {response.status_code} Allow {sorted(allow)}")
            elif method != "HEAD" and not media.startswith(PROBLEM_MEDIA_TYPE):
                wrong.append(f"{method} {path}: 405 as {media}")
    assert not wrong, f"{name}, expected Allow = the document's methods:\n" + "\n".join(wrong)
    assert await staged(app) == before


async def test_a_path_with_two_methods_lists_both(
    service: tuple[str, FastAPI, httpx.AsyncClient],
) -> None:
    # The paths the issue named, one per service that has such a path; it holds for metrics
    # only vacuously (every metrics path serves GET alone), which the first test covers.
    name, _, client = service
    cases = {
        "registry": ("/services", {"GET", "POST"}),
        "kvik": ("/kiosks/x-1/token", {"POST", "DELETE"}),
        "mobile": ("/visits/x-1", {"GET", "PATCH"}),
        "metrics": ("/trend", {"GET"}),
    }
    path, expected = cases[name]
    response = await client.request("PUT", path)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == expected
