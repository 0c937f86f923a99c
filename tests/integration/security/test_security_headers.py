"""Every kind of answer of every service carries the security response headers
(services/plumbing/security_headers.py; ASVS 14.4.4-14.4.7): JSON, problem+json errors, 404,
405, 431, the HTML pages, /metrics and the iCalendar feeds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.contracts import District
from services.plumbing.settings import HubSettings
from tests.integration.security.services import SERVICES, running_service, write_endpoints
from tests.support.tokens import auth

pytestmark = pytest.mark.integration

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
# The metrics service's page is open here, so it answers with the page itself.
OVERRIDES: dict[str, dict[str, Any]] = {"metrics": {"public_page": "open"}}
PAGES = {"metrics": ["/"], "mobile": [f"/calendars/districts/{next(iter(District)).value}.ics"]}


def _missing(answer: httpx.Response) -> dict[str, str | None]:
    """The security headers ``answer`` lacks or has wrong, by name."""
    found = {name: answer.headers.get(name) for name in ALWAYS}
    return {name: value for name, value in found.items() if value != ALWAYS[name]}


@pytest.mark.parametrize("name", list(SERVICES))
async def test_every_kind_of_answer_carries_the_security_headers(
    name: str, hub_settings: HubSettings
) -> None:
    async with running_service(name, hub_settings, **OVERRIDES.get(name, {})) as (app, client):
        method, path = write_endpoints(app)[0]
        answers = {
            "json": await client.get("/healthz"),
            "problem": await client.request(method, path),
            "404": await client.get("/no-such-route"),
            "405": await client.delete("/healthz"),
            "431": await client.get("/healthz", headers={f"x-f-{i}": "v" for i in range(150)}),
            "docs": await client.get("/docs"),
            "metrics": await client.get("/metrics"),
            **{page: await client.get(page) for page in PAGES.get(name, [])},
        }
    statuses = {kind: answer.status_code for kind, answer in answers.items()}
    assert statuses["json"] == statuses["docs"] == statuses["metrics"] == 200, statuses
    assert (statuses["problem"], statuses["404"], statuses["405"], statuses["431"]) == (
        401,
        404,
        405,
        431,
    )
    for page in PAGES.get(name, []):
        assert statuses[page] == 200, (page, answers[page].text[:200])
    wrong = {kind: _missing(answer) for kind, answer in answers.items() if _missing(answer)}
    assert wrong == {}
    # Nothing was authenticated: the answers keep the caching their routes chose.
    assert answers["json"].headers.get("cache-control") is None
    assert "strict-transport-security" not in answers["json"].headers


@pytest.mark.parametrize("name", list(SERVICES))
async def test_an_authenticated_answer_is_no_store_and_hsts_is_sent_when_configured(
    name: str, hub_settings: HubSettings
) -> None:
    hub = hub_settings.model_copy(update={"hsts_seconds": 31_536_000})
    async with running_service(name, hub, **OVERRIDES.get(name, {})) as (app, client):
        method, path = write_endpoints(app)[0]
        refused = await client.request(method, path, headers=auth(hub, subject="headers-probe"))
        anonymous = await client.get("/healthz")
    assert refused.status_code in {401, 403}
    assert refused.headers["cache-control"] == "no-store"
    assert _missing(refused) == {}
    assert anonymous.headers["strict-transport-security"] == "max-age=31536000"
    assert refused.headers["strict-transport-security"] == "max-age=31536000"
