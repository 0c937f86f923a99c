"""The security response headers (services/plumbing/security_headers.py): on every answer,
no-store for authenticated requests unless the route chose, HSTS only when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.plumbing.http import create_service_app
from services.plumbing.security_headers import SecurityHeaders
from services.plumbing.settings import HubSettings, ServiceSettings

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class ProbeSettings(ServiceSettings):
    service = "probe"


def _probe_app(hsts_seconds: int = 0) -> FastAPI:
    router = APIRouter()

    @router.get("/cached")
    async def cached() -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Cache-Control": "public, max-age=60"})

    @router.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f"chunk {index}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    settings = ProbeSettings(hub=HubSettings(hsts_seconds=hsts_seconds))
    return create_service_app(settings, title="probe", description="p", routers=[router])


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    # The catch-all handler answers a 500, then Starlette re-raises it for the server to log.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return await client.get(path, headers=headers)


def _assert_always(answer: httpx.Response) -> None:
    assert {name: answer.headers.get(name) for name in ALWAYS} == ALWAYS, answer.headers


async def test_every_answer_carries_the_headers_and_a_public_one_is_not_no_store() -> None:
    answer = await _get(_probe_app(), "/healthz")
    assert answer.status_code == 200
    _assert_always(answer)
    assert "cache-control" not in answer.headers
    assert "strict-transport-security" not in answer.headers


async def test_an_answer_to_an_authenticated_request_is_no_store() -> None:
    answer = await _get(_probe_app(), "/healthz", {"Authorization": "Bearer whatever"})
    _assert_always(answer)
    assert answer.headers["cache-control"] == "no-store"


async def test_a_routes_own_cache_control_is_kept_even_when_authenticated() -> None:
    answer = await _get(_probe_app(), "/cached", {"Authorization": "Bearer whatever"})
    assert answer.headers.get_list("cache-control") == ["public, max-age=60"]


async def test_a_streamed_answer_carries_the_headers_and_its_whole_body() -> None:
    answer = await _get(_probe_app(), "/stream")
    _assert_always(answer)
    assert answer.text == "chunk 0\nchunk 1\nchunk 2\n"


async def test_the_500_of_an_unexpected_exception_carries_the_headers() -> None:
    answer = await _get(_probe_app(), "/boom")
    assert answer.status_code == 500
    _assert_always(answer)


async def test_hsts_is_sent_only_when_configured() -> None:
    assert HubSettings().hsts_seconds == 0
    answer = await _get(_probe_app(hsts_seconds=31_536_000), "/healthz")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_header_the_app_set_is_not_sent_twice() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse("x", headers={"X-Frame-Options": "SAMEORIGIN"})
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=SecurityHeaders(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        answer = await client.get("/")
    assert answer.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
