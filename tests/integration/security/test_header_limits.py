"""Every service refuses too many header fields, or too many bytes of them, with 431
problem+json before authentication (the limits of services/plumbing/header_limits.py)."""

from __future__ import annotations

import pytest

from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, running_service, write_endpoints

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", list(SERVICES))
async def test_every_service_answers_431_to_oversized_heads_before_auth(
    name: str, hub_settings: HubSettings
) -> None:
    async with running_service(name, hub_settings) as (app, client):
        method, path = write_endpoints(app)[0]
        many = {f"x-field-{i}": "v" for i in range(150)}
        large = {f"x-big-{i}": "v" * 6_000 for i in range(3)}
        for headers in (many, large):
            answer = await client.request(method, path, headers=headers)
            assert answer.status_code == 431, (headers.keys(), answer.text)
            assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
        # The same request with ordinary headers reaches authentication.
        assert (await client.request(method, path)).status_code == 401
