"""The kvik app's OpenAPI document and handler table (services/kvik/app.py, events.py), built
without connecting."""

from __future__ import annotations

import httpx
import pytest

from services.contracts import EventType
from services.kvik.app import create_app
from services.kvik.events import handlers
from services.kvik.settings import KvikSettings
from services.plumbing.settings import HubSettings


def test_the_openapi_document_lists_the_kiosk_session_and_help_routes() -> None:
    paths = create_app(KvikSettings()).openapi()["paths"]
    assert {
        "/kiosks",
        "/kiosks/{kiosk_id}/token",
        "/kiosks/{kiosk_id}/heartbeat",
        "/sessions",
        "/sessions/batch",
        "/sessions/{session_id}/start",
        "/sessions/{session_id}/steps",
        "/sessions/{session_id}/end",
        "/help",
        "/help/queues/{queue}/stream",
        "/help/{help_id}/take",
    } <= set(paths)
    batch = paths["/sessions/batch"]["post"]
    assert "207" in batch["responses"]
    assert "application/problem+json" in batch["responses"]["422"]["content"]


def test_the_service_consumes_registry_entries_and_services_only() -> None:
    assert set(handlers(HubSettings())) == {
        EventType.REGISTRY_ENTRY_UPSERTED,
        EventType.REGISTRY_ENTRY_RETIRED,
        EventType.REGISTRY_SERVICE_UPSERTED,
        EventType.REGISTRY_SERVICE_RETIRED,
    }


def test_every_interval_is_a_setting_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KANALHUB_KVIK_IDLE_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("KANALHUB_KVIK_RATE_BURST", "7")
    settings = KvikSettings()
    assert (settings.idle_timeout_seconds, settings.rate_burst) == (5.0, 7)
    # The limits are the defaults: 3 missed heartbeats, 5 min skew, 4 h, 1,000 items.
    assert settings.missed_heartbeats == 3
    assert settings.clock_skew_seconds == 300
    assert settings.max_session_seconds == 4 * 3600
    assert settings.max_batch_items == 1000


async def test_a_store_that_does_not_answer_is_a_503_to_retry() -> None:
    from redis.asyncio import Redis

    from services.hub.embedded import free_port
    from services.kvik.service import KvikService
    from services.kvik.store import KvikStore
    from services.plumbing.outbox import Outbox

    hub = HubSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens here
    settings = KvikSettings(hub=hub, background_tasks=False)
    app = create_app(settings)
    redis = Redis.from_url(hub.redis_url, socket_connect_timeout=0.5)
    # No lifespan (it would wait for a broker): the routes need only the service.
    app.state.kvik = KvikService(KvikStore(redis, hub, Outbox(redis, hub, "kvik")), settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kvik") as client:
        response = await client.post(
            "/kiosks/kiosk-1/heartbeat",
            json={"software_version": "1.0", "state": "ready"},
            headers={"Authorization": "Bearer kvk_anything"},
        )
    await redis.aclose()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


def test_every_json_route_declares_its_response_model() -> None:
    from fastapi.routing import APIRoute

    from services.kvik.api import router

    kvik = [route for route in router.routes if isinstance(route, APIRoute)]
    untyped = {route.path for route in kvik if route.response_model is None}
    assert len(kvik) == 17
    assert untyped == {"/help/queues/{queue}/stream"}  # Server-Sent Events, not JSON
