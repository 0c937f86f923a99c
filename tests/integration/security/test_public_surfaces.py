"""Public surfaces by decision: the dashboard page and every service's ``/metrics`` are open or
protected as configured (``KANALHUB_METRICS_PUBLIC_PAGE``, ``KANALHUB_PROMETHEUS_AUTH``), and
each setting is answered as docs/security.md ("Public surfaces") says."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.plumbing.scrape_auth import PrometheusAuth
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, running_service
from tests.support.tokens import auth, bearer

pytestmark = pytest.mark.integration

SCRAPE_TOKEN = "scrape-0f9c2d7e4b1a8c3e6d5f0a9b8c7d6e5f"


async def test_an_open_page_is_served_without_a_token(hub_settings: HubSettings) -> None:
    async with running_service("metrics", hub_settings, public_page="open") as (_, client):
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_a_protected_page_needs_a_metrics_read_token(hub_settings: HubSettings) -> None:
    async with running_service("metrics", hub_settings, public_page="protected") as (_, client):
        anonymous = await client.get("/")
        editor = await client.get("/", headers=auth(hub_settings, "registry:write", subject="e"))
        reader = await client.get("/", headers=auth(hub_settings, "metrics:read", subject="r"))
    assert (anonymous.status_code, editor.status_code, reader.status_code) == (401, 403, 200)
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "<html" not in anonymous.text
    assert reader.headers["content-type"].startswith("text/html")


async def test_a_page_switched_off_is_not_found_even_with_a_token(
    hub_settings: HubSettings,
) -> None:
    async with running_service("metrics", hub_settings, public_page="off") as (_, client):
        response = await client.get("/", headers=auth(hub_settings, "metrics:read", subject="r"))
    assert response.status_code == 404


@pytest.mark.parametrize("name", list(SERVICES))
async def test_metrics_without_scrape_auth_is_open(name: str, hub_settings: HubSettings) -> None:
    hub = hub_settings.model_copy(update={"prometheus_auth": PrometheusAuth.NONE})
    async with running_service(name, hub) as (_, client):
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "http_requests" in response.text or "# HELP" in response.text


@pytest.mark.parametrize("name", list(SERVICES))
async def test_metrics_with_bearer_scrape_auth_needs_exactly_the_scrape_token(
    name: str, hub_settings: HubSettings
) -> None:
    hub = hub_settings.model_copy(
        update={
            "prometheus_auth": PrometheusAuth.BEARER,
            "prometheus_token": SecretStr(SCRAPE_TOKEN),
        }
    )
    async with running_service(name, hub) as (_, client):
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers=bearer(SCRAPE_TOKEN + "x"))
        person = await client.get(
            "/metrics", headers=auth(hub_settings, "metrics:read", subject="r")
        )
        scraper = await client.get("/metrics", headers=bearer(SCRAPE_TOKEN))
    assert [r.status_code for r in (anonymous, wrong, person)] == [401, 401, 401]
    assert "# HELP" not in anonymous.text
    assert scraper.status_code == 200
    assert "# HELP" in scraper.text


async def test_bearer_scrape_auth_without_a_token_refuses_every_scrape(
    hub_settings: HubSettings,
) -> None:
    hub = hub_settings.model_copy(update={"prometheus_auth": PrometheusAuth.BEARER})
    async with running_service("kvik", hub) as (_, client):
        response = await client.get("/metrics", headers=bearer(""))
    assert response.status_code == 401
