"""Every service app: health, readiness that tells the truth, metrics; no crash without a broker."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.hub.embedded import free_port
from services.plumbing.settings import HubSettings
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from tests.integration.plumbing.support import eventually

pytestmark = pytest.mark.integration


async def test_service_without_a_broker_stays_up_and_readyz_says_503(
    hub_settings: HubSettings,
) -> None:
    dead_broker = hub_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    app = create_app(RegistrySettings(hub=dead_broker))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            await asyncio.sleep(1.0)  # the connect task has failed at least once by now
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"redis": True, "kafka": False}


async def test_service_with_broker_and_valkey_becomes_ready(hub_settings: HubSettings) -> None:
    app = create_app(RegistrySettings(hub=hub_settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, within=30)
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert (
                'kanalhub_dependency_up{dependency="kafka",service="registry"} 1.0' in metrics.text
            )
            assert "kanalhub_outbox_depth" in metrics.text
