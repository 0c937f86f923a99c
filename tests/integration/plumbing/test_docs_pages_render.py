"""Swagger UI and ReDoc render in headless Chromium from the service's own assets, under the
pages' Content-Security-Policy, with no CSP violation reported."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import APIRouter

from services.hub.embedded import free_port
from services.plumbing.http import create_service_app
from services.plumbing.settings import HubSettings, ServiceSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="headless Chromium missing: `make tools` installs it (apt-get install chromium)",
    ),
]


class ProbeSettings(ServiceSettings):
    service = "probe"


operations = APIRouter()


@operations.get("/probe-figures", summary="Figures of the probe")
async def probe_figures() -> dict[str, int]:
    return {"figures": 1}


@pytest.fixture
async def served(hub_settings: HubSettings) -> AsyncIterator[str]:
    port = free_port()
    app = create_service_app(
        ProbeSettings(hub=hub_settings), title="probe", description="docs", routers=[operations]
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(60):
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _rendered(url: str) -> tuple[str, str]:
    """The DOM Chromium built for ``url`` once its scripts ran, and Chromium's log (console
    messages, CSP violations among them)."""
    process = await asyncio.create_subprocess_exec(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode(), err.decode()


def _violations(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Content Security Policy" in line]


async def test_swagger_ui_renders_the_operations_under_its_policy(served: str) -> None:
    dom, log = await _rendered(f"{served}/docs")
    assert "Figures of the probe" in dom, dom[-2000:]
    assert "opblock" in dom
    assert _violations(log) == []


async def test_redoc_renders_the_operations_under_its_policy(served: str) -> None:
    dom, log = await _rendered(f"{served}/redoc")
    assert "Figures of the probe" in dom, dom[-2000:]
    # ReDoc's "powered by" logo comes from cdn.redoc.ly: the policy blocks it, as it should.
    # Nothing of this origin (its scripts, styles, the OpenAPI document) may be refused.
    for violation in _violations(log):
        assert "https://cdn.redoc.ly/" in violation, violation
