"""The auth matrix: every write endpoint of every service, called with no token, with a token
for another role, and with an expired token, is refused (401/403) and stages nothing.

The endpoints come from each service's own OpenAPI document, so a new write endpoint is in the
matrix the day it is added."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.auth import mint_token
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, running_app, write_endpoints

pytestmark = pytest.mark.integration

OTHER_ROLE = {
    "registry": "metrics:read",
    "kvik": "metrics:read",
    "mobile": "metrics:read",
    "metrics": "registry:write",
}


@pytest.fixture(params=list(SERVICES))
async def service(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name = request.param
    async with running_app(name, hub_settings) as (app, client):
        yield name, app, client


async def _staged(app: FastAPI) -> int:
    runtime: ServiceRuntime = app.state.runtime
    return await runtime.outbox.depth()


@pytest.mark.parametrize(
    "credential", ["none", "other_role", "expired", "garbage"], ids=lambda c: str(c)
)
async def test_every_write_endpoint_refuses_without_the_right_token(
    service: tuple[str, FastAPI, httpx.AsyncClient], hub_settings: HubSettings, credential: str
) -> None:
    name, app, client = service
    headers = {
        "none": {},
        "other_role": {
            "Authorization": f"Bearer {mint_token(hub_settings, 'someone', [OTHER_ROLE[name]])}"
        },
        "expired": {
            "Authorization": "Bearer "
            + mint_token(
                hub_settings,
                "someone",
                ["registry:write", "kvik:admin", "mobile:plan", "metrics:ingest"],
                -60,
            )
        },
        "garbage": {"Authorization": "Bearer not-a-token"},
    }[credential]
    await asyncio.sleep(0)
    before = await _staged(app)
    endpoints = write_endpoints(app)
    assert endpoints, f"{name} has no write endpoints?"
    wrong = []
    for method, path in endpoints:
        response = await client.request(method, path, headers=headers, json={})
        expected = {403} if credential == "other_role" else {401}
        if response.status_code not in expected | {401, 403}:
            wrong.append(f"{method.upper()} {path}: {response.status_code}")
        elif credential != "other_role" and response.status_code != 401:
            wrong.append(f"{method.upper()} {path}: {response.status_code} (expected 401)")
    assert not wrong, "\n".join(wrong)
    assert await _staged(app) == before
