"""Hostile clients against every service: bodies nested 100,000 levels deep (inside the size
limit), and clients that trickle or stall their requests, a couple of hundred at once.

Nested bodies go to every write endpoint of each service's OpenAPI document (so a new endpoint
is covered the day it is added) with a token holding every role, so that nothing is refused
before the body is read. Slow clients talk to a real uvicorn server over sockets: the
in-process ASGI transport cannot trickle bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.plumbing.auth import mint_token
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import HubSettings
from tests.integration.security.services import (
    SERVICES,
    create_app,
    redis_state,
    running_service,
    service_settings,
    write_endpoints,
)

pytestmark = pytest.mark.integration

ALL_ROLES = [
    "registry:write",
    "kvik:admin",
    "kvik:staff",
    "mobile:plan",
    "metrics:ingest",
    "metrics:read",
]
DEPTH = 100_000
NESTED = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
}
KNOWN_DEFECTS: dict[str, dict[str, str]] = {}
"""Endpoints known to answer a deeply nested body with a 500; the test fails when one of them
is fixed, so that it is taken out of here."""
BODY_TIMEOUT = 2.0
"""The services' body timeout in the slow-client tests (the default is a minute)."""
SLOW_CLIENTS = 200
SAFETY = 30.0
"""A generous upper bound for anything the tests wait on; not a timing claim."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(params=list(SERVICES))
async def in_process(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[tuple[str, FastAPI, httpx.AsyncClient]]:
    """A service app with its lifespan and an in-process client that reports 500s as
    responses (an exception escaping the app fails the test on its own)."""
    name = request.param
    async with running_service(name, hub_settings) as (app, client):
        yield name, app, client


@pytest.mark.parametrize("shape", list(NESTED))
async def test_deeply_nested_bodies_get_a_4xx_problem_and_change_nothing(
    in_process: tuple[str, FastAPI, httpx.AsyncClient], hub_settings: HubSettings, shape: str
) -> None:
    name, app, client = in_process
    headers = {
        "Authorization": f"Bearer {mint_token(hub_settings, 'hostile', ALL_ROLES)}",
        "Content-Type": "application/json",
    }
    # Let the lifespan's own writes (seeding, relay) settle before the snapshot.
    await asyncio.sleep(0.5)
    before = await redis_state(app, hub_settings.key_prefix)
    wrong = []
    for method, path in write_endpoints(app):
        try:
            response = await client.request(method, path, content=NESTED[shape], headers=headers)
        except RecursionError:
            wrong.append(f"{method.upper()} {path}: RecursionError escaped the app")
            continue
        media = response.headers.get("content-type", "")
        if not 400 <= response.status_code < 500 or not media.startswith(PROBLEM_MEDIA_TYPE):
            wrong.append(f"{method.upper()} {path}: {response.status_code} {media}")
    known = {line for line in wrong if line.split(":")[0] in KNOWN_DEFECTS.get(name, {})}
    assert not set(wrong) - known, f"{name}:\n" + "\n".join(wrong)
    fixed = set(KNOWN_DEFECTS.get(name, {})) - {line.split(":")[0] for line in known}
    assert not fixed, f"fixed now, take them out of KNOWN_DEFECTS: {fixed}"
    assert await redis_state(app, hub_settings.key_prefix) == before
    if known:
        pytest.xfail(
            "; ".join(f"{line} ({KNOWN_DEFECTS[name][line.split(':')[0]]})" for line in known)
        )


@dataclass
class Served:
    """A service answering on a real socket."""

    name: str
    app: FastAPI
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture(params=list(SERVICES))
async def served(
    request: pytest.FixtureRequest, hub_settings: HubSettings
) -> AsyncIterator[Served]:
    """A service behind a real uvicorn server (as ``kanalhub serve`` runs it), with a short
    body timeout so that the cut-off is seen quickly."""
    name = request.param
    settings = service_settings(name, hub_settings, body_timeout_seconds=BODY_TIMEOUT)
    app = create_app(name, settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(SAFETY * 2):
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
    try:
        yield Served(name, app, "127.0.0.1", port)
    finally:
        server.should_exit = True
        await task


def _post_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes the connection (or SAFETY passes)."""
    async with asyncio.timeout(SAFETY):
        return await reader.read()


async def test_a_client_stalling_mid_body_on_a_write_endpoint_gets_408_problem_and_is_closed(
    served: Served, hub_settings: HubSettings
) -> None:
    method, path = write_endpoints(served.app)[0]
    token = mint_token(hub_settings, "hostile", ALL_ROLES)
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        head = (
            f"{method.upper()} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        writer.write(head + b'{"a": ')
        await writer.drain()
        answer = await _read_answer(reader)  # returns only once the server closes
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer[:300]
    assert PROBLEM_MEDIA_TYPE.encode() in rest.lower()


async def _trickle(served: Served, headers_too: bool, stop: asyncio.Event) -> tuple[bool, bytes]:
    """One slow client on the service's first write endpoint: it trickles its headers (if
    ``headers_too``) and then its body a byte at a time, and never finishes. Returns whether
    the server cut it off (closed or reset the connection) and what it answered before."""
    path = write_endpoints(served.app)[0][1]
    head = _post_head(path, 10_000)
    chunks = [bytes([b]) for b in head] if headers_too else [head]
    chunks += [b"[" for _ in range(10_000)]
    answer = b""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        for chunk in chunks:
            if stop.is_set():
                return False, answer
            writer.write(chunk)
            await writer.drain()
            # A byte every 0.2 s; whatever the server says meanwhile is kept.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    data = await reader.read(4096)
                    if data == b"":
                        return True, answer  # closed
                    answer += data
    except ConnectionError:
        # Closing a socket with our unread bytes in it makes the server's kernel reset the
        # connection, which may discard its answer before we read it: still cut off.
        return True, answer
    finally:
        writer.close()
    return False, answer


async def test_normal_clients_are_served_while_200_slow_clients_trickle(served: Served) -> None:
    stop = asyncio.Event()
    slow = [
        asyncio.create_task(_trickle(served, headers_too=n % 2 == 0, stop=stop))
        for n in range(SLOW_CLIENTS)
    ]
    try:
        await asyncio.sleep(0.5)  # every slow client is connected and trickling
        async with httpx.AsyncClient(base_url=served.url, timeout=SAFETY) as client:
            answers = [await client.get("/healthz") for _ in range(20)]
            answers.append(await client.get("/openapi.json"))
        assert [a.status_code for a in answers] == [200] * len(answers)
    finally:
        stop.set()
        await asyncio.gather(*slow, return_exceptions=True)


async def test_200_clients_trickling_their_bodies_are_all_cut_off_with_408(
    served: Served,
) -> None:
    stop = asyncio.Event()
    slow = [
        asyncio.create_task(_trickle(served, headers_too=False, stop=stop))
        for _ in range(SLOW_CLIENTS)
    ]
    try:
        async with asyncio.timeout(SAFETY):
            answers = await asyncio.gather(*slow)
    finally:
        stop.set()
        await asyncio.gather(*slow, return_exceptions=True)
    assert all(cut for cut, _ in answers)
    # Those that read the answer before the connection went read a 408.
    assert {answer.partition(b"\r\n")[0] for _, answer in answers if answer} == {
        b"HTTP/1.1 408 Request Timeout"
    }
