"""Every operation of every service that takes a body refuses a body of another media type with
415 problem+json naming the type it takes, and nothing is stored (services/plumbing/
content_types.py; ASVS 13.1.5 / 13.2.5). The operations are read from each app's OpenAPI
document, so one added later is covered the day it is added."""

from __future__ import annotations

import asyncio
import re

import pytest

from services.plumbing.auth import Role, mint_token
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, redis_state, running_service, staged
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

# Bodies that would be valid JSON (and CSV), sent with a type no operation takes, and without
# any Content-Type at all.
WRONG_TYPES = ["text/plain", "application/x-www-form-urlencoded", None]


@pytest.mark.parametrize("name", list(SERVICES))
async def test_every_body_operation_refuses_another_media_type_with_415_storing_nothing(
    name: str, hub_settings: HubSettings
) -> None:
    token = mint_token(hub_settings, "content-type-probe", list(Role))
    async with running_service(name, hub_settings) as (app, client):
        operations = [
            (method, re.sub(r"\{[^}]+\}", "x-1", path), sorted(operation["requestBody"]["content"]))
            for path, item in app.openapi()["paths"].items()
            for method, operation in item.items()
            if "requestBody" in operation
        ]
        assert operations, "every service has operations that take a body"
        undocumented = [
            (method, path)
            for path, item in app.openapi()["paths"].items()
            for method, operation in item.items()
            if "requestBody" in operation and "415" not in operation["responses"]
        ]
        await asyncio.sleep(0.5)  # the lifespan's own writes (seeding, relay) settle first
        before, staged_before = await redis_state(app, hub_settings.key_prefix), await staged(app)
        wrong = []
        for method, path, declared in operations:
            for content_type in WRONG_TYPES:
                headers = {"Authorization": f"Bearer {token}"}
                if content_type is not None:
                    headers["Content-Type"] = content_type
                answer = await client.request(method, path, content=b"{}", headers=headers)
                problem = (
                    answer.json() if answer.headers["content-type"] == PROBLEM_MEDIA_TYPE else {}
                )
                if (
                    answer.status_code != 415
                    or not problem.get("type", "").endswith("/unsupported-media-type")
                    or not all(media in problem.get("detail", "") for media in declared)
                    or answer.headers.get("accept") != ", ".join(declared)
                ):
                    wrong.append((method, path, content_type, answer.status_code, answer.text))
        after, staged_after = await redis_state(app, hub_settings.key_prefix), await staged(app)
    assert wrong == []
    assert undocumented == []
    assert staged_after == staged_before
    assert after == before


async def test_what_the_csv_routes_took_before_they_still_take(hub_settings: HubSettings) -> None:
    """The registry's bulk import declares JSON and CSV; the metrics intake CSV only: each
    still gets past the guard with what it declares (to its own validation, 422)."""
    token = auth(hub_settings, *Role, subject="csv-probe")
    async with running_service("registry", hub_settings) as (_, registry):
        as_csv = await registry.post(
            "/import",
            params={"format": "csv", "kind": "site"},
            content=b"not,the,header\n",
            headers={**token, "Content-Type": "text/csv; charset=utf-8"},
        )
        as_json = await registry.post("/import", json={"sites": [{}]}, headers=token)
    async with running_service("metrics", hub_settings) as (_, metrics):
        intake = await metrics.post(
            "/intake/csv",
            params={"source": "web", "day": "2024-01-15"},
            content=b"not,the,header\n",
            headers={**token, "Content-Type": "text/csv"},
        )
    assert (as_csv.status_code, as_json.status_code, intake.status_code) == (422, 422, 422), (
        as_csv.text,
        as_json.text,
        intake.text,
    )
