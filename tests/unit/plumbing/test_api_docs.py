"""The docs pages come from the service itself (no CDN) and every HTML page has a CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.plumbing.api_docs import ASSETS_PATH, PAGE_POLICY
from services.plumbing.http import create_service_app
from services.plumbing.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service = "probe"


pages = APIRouter()


@pages.get("/page", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    return HTMLResponse("<html><body><svg></svg></body></html>")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(
        ProbeSettings(), title="probe", description="plumbing only", routers=[pages]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_a_docs_page_references_no_other_host(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 200
    assert not re.search(r"https?://|//[a-z]", answer.text), answer.text
    for reference in _references(answer.text):
        assert reference.startswith("/"), reference


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_assets_a_docs_page_names_are_served(
    client: httpx.AsyncClient, path: str
) -> None:
    references = _references((await client.get(path)).text)
    assert any(reference.startswith(ASSETS_PATH) for reference in references)
    for reference in references:
        if reference.startswith(ASSETS_PATH):
            assert (await client.get(reference)).status_code == 200, reference


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_a_docs_page_allows_only_its_own_inline_scripts(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    policy = answer.headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src is not None
    inline = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert set(script_src.group(1).split()) == {"'self'", *expected}
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in script_src.group(1)


async def test_swagger_ui_does_not_send_the_document_to_a_validator(
    client: httpx.AsyncClient,
) -> None:
    assert '"validatorUrl": null' in (await client.get("/docs")).text


async def test_another_html_page_gets_the_scriptless_policy(client: httpx.AsyncClient) -> None:
    answer = await client.get("/page")
    assert answer.headers["content-security-policy"] == PAGE_POLICY
    assert "script-src" not in PAGE_POLICY  # default-src 'none' forbids every script


async def test_json_answers_get_no_policy(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert "content-security-policy" not in answer.headers
