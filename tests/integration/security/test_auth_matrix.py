"""The auth matrix: every write endpoint of every service, called with no token, with a token
for another role, and with an expired token, is refused (401/403) and stages nothing.

The endpoints come from each service's own OpenAPI document, so a new write endpoint is in the
matrix the day it is added."""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.plumbing.auth import mint_token
from services.plumbing.runtime import ServiceRuntime
from services.plumbing.settings import HubSettings

pytestmark = pytest.mark.integration

SERVICES = {
    "registry": ("services.registry.app", "services.registry.settings:RegistrySettings"),
    "kvik": ("services.kvik.app", "services.kvik.settings:KvikSettings"),
    "mobile": ("services.mobile.app", "services.mobile.settings:MobileSettings"),
    "metrics": ("services.metrics.app", "services.metrics.settings:MetricsSettings"),
}
WRITES = ("post", "put", "patch", "delete")
OTHER_ROLE = {
    "registry": "metrics:read",
    "kvik": "metrics:read",
    "mobile": "metrics:read",
    "metrics": "registry:write",
}


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.fixture(params=list(SERVICES))
async def service(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    name = request.param
    app_module, settings_path = SERVICES[name]
    settings = _load(settings_path)(hub=hub_settings)
    app: FastAPI = importlib.import_module(app_module).create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            yield name, app, client


def _write_endpoints(app: FastAPI) -> list[tuple[str, str]]:
    endpoints = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method in WRITES:
                endpoints.append((method, re.sub(r"\{[^}]+\}", "x-1", path)))
    return endpoints


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
    endpoints = _write_endpoints(app)
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
