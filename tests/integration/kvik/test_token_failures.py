"""Failed device-token attempts are limited per client address (429 with Retry-After), shared
by the replicas through Valkey; a kiosk with a valid token is never held back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.plumbing.settings import HubSettings
from tests.integration.kvik.conftest import Kvik, kvik_settings, running, session_body
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

KIOSK = "kiosk-test-01"
HEARTBEAT = {"software_version": "2.4.1", "state": "ready"}
LIMIT = 3
UNKNOWN = bearer("kvk_guessed-token-that-no-kiosk-has")


@pytest.fixture
async def kvik(hub_settings: HubSettings) -> AsyncIterator[Kvik]:
    """A kvik app allowing 3 unknown tokens per address and minute."""
    async with running(kvik_settings(hub_settings, failed_token_attempts_per_minute=LIMIT)) as app:
        await app.seed()
        yield app


def _client_from(kvik: Kvik, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=kvik.app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://kvik")


async def _fail(client: httpx.AsyncClient, times: int) -> list[int]:
    statuses = []
    for _ in range(times):
        response = await client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=UNKNOWN)
        statuses.append(response.status_code)
    return statuses


async def test_unknown_tokens_past_the_limit_get_429_with_retry_after(kvik: Kvik) -> None:
    async with _client_from(kvik, "203.0.113.7") as client:
        assert await _fail(client, LIMIT) == [401] * LIMIT
        response = await client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=UNKNOWN)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://kanalhub.dk/problems/token-attempts-limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_the_session_post_counts_unknown_tokens_too(kvik: Kvik) -> None:
    async with _client_from(kvik, "203.0.113.8") as client:
        statuses = [
            (await client.post("/sessions", json=session_body(KIOSK), headers=UNKNOWN)).status_code
            for _ in range(LIMIT + 1)
        ]
    assert statuses == [401] * LIMIT + [429]


async def test_a_valid_kiosk_at_a_limited_address_is_served(kvik: Kvik) -> None:
    token = bearer(await kvik.register(KIOSK))
    async with _client_from(kvik, "203.0.113.9") as client:
        await _fail(client, LIMIT + 2)
        heartbeat = await client.post(f"/kiosks/{KIOSK}/heartbeat", json=HEARTBEAT, headers=token)
        session = await client.post("/sessions", json=session_body(KIOSK), headers=token)
    assert heartbeat.status_code == 200
    assert session.status_code == 201


async def test_the_limit_is_per_address(kvik: Kvik) -> None:
    async with _client_from(kvik, "203.0.113.10") as noisy:
        await _fail(noisy, LIMIT + 1)
    async with _client_from(kvik, "198.51.100.4") as other:
        assert await _fail(other, 1) == [401]


async def test_replicas_share_the_count(kvik: Kvik) -> None:
    # A second replica on the same Valkey: what the first counted, the second refuses.
    async with _client_from(kvik, "203.0.113.11") as client:
        assert await _fail(client, LIMIT) == [401] * LIMIT
    async with (
        running(kvik.settings) as replica,
        _client_from(replica, "203.0.113.11") as client,
    ):
        assert await _fail(client, 1) == [429]
