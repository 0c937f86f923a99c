"""The service app's edge: no redirect is ever built from the Host header."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.http import create_service_app
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service = "probe"


@pytest.fixture
def app() -> FastAPI:
    return create_service_app(ProbeSettings(), title="probe", description="plumbing only")


@pytest.mark.parametrize("path", ["/healthz/", "/openapi.json/", "/docs/"])
async def test_a_trailing_slash_with_a_hostile_host_is_404_and_no_redirect(
    app: FastAPI, path: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        answer = await client.get(path, headers={"Host": "evil.example"})
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "evil.example" not in answer.text


async def test_the_exact_path_is_still_served(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        answer = await client.get("/healthz", headers={"Host": "evil.example"})
    assert answer.status_code == 200
