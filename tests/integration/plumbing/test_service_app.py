"""Every service app: health, readiness that tells the truth, metrics; no crash without a broker."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from services.hub.embedded import free_port
from services.plumbing.http import create_service_app
from services.plumbing.settings import HubSettings, ServiceSettings
from tests.integration.plumbing.support import eventually, make_event
from tests.support.apps import running_app

pytestmark = pytest.mark.integration


class ProbeSettings(ServiceSettings):
    service = "probe"


def create_app(settings: ProbeSettings) -> FastAPI:
    """A service with nothing but the plumbing, as every service starts."""
    return create_service_app(settings, title="probe", description="plumbing only")


async def test_service_without_a_broker_stays_up_and_readyz_says_503(
    hub_settings: HubSettings,
) -> None:
    dead_broker = hub_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    app = create_app(ProbeSettings(hub=dead_broker))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            await asyncio.sleep(1.0)  # the connect task has failed at least once by now
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"redis": True, "kafka": False}


async def test_service_with_broker_and_valkey_becomes_ready(hub_settings: HubSettings) -> None:
    app = create_app(ProbeSettings(hub=hub_settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, within=30)
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert 'kanalhub_dependency_up{dependency="kafka",service="probe"} 1.0' in metrics.text
            assert "kanalhub_outbox_depth" in metrics.text


async def test_stopping_a_service_drains_its_outbox_first(
    hub_settings: HubSettings, redis_client: Redis
) -> None:
    app = create_app(ProbeSettings(hub=hub_settings))
    async with running_app(app, "probe"):
        runtime = app.state.runtime
        # more than one relay batch (500): stopping must wait for the relay to publish them all
        await runtime.outbox.publish(*[make_event(f"visit-{i}", seq=i) for i in range(1500)])
    # the lifespan has ended: the relay published everything before it was cancelled
    assert await redis_client.xlen(hub_settings.key("probe", "outbox")) == 0
