"""Request heads with too many header fields, or too many bytes of them, are answered 431
problem+json before authentication, and heads that trickle in are answered 408, by a real
uvicorn server run as ``kanalhub serve`` runs it (``bounded_http_protocol``): the in-process
transport cannot send a raw head, nor send it slowly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI

from services.hub.embedded import free_port
from services.plumbing.auth import RegistryWriter
from services.plumbing.header_limits import REQUEST_LINE_ALLOWANCE, bounded_http_protocol
from services.plumbing.http import create_service_app
from services.plumbing.problems import PROBLEM_MEDIA_TYPE
from services.plumbing.settings import HubSettings, ServiceSettings

pytestmark = pytest.mark.integration

SAFETY = 30.0
"""A generous upper bound for anything the tests wait on; not a timing claim."""


class ProbeSettings(ServiceSettings):
    service = "probe"


guarded = APIRouter()


@guarded.get("/guarded")
async def guarded_route(editor: RegistryWriter) -> dict[str, str]:
    return {"subject": editor.subject}


@dataclass
class Served:
    settings: ProbeSettings
    port: int

    async def exchange(self, head: bytes) -> bytes:
        """Send ``head`` on a fresh connection; what the server answers until it closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(head)
            await writer.drain()
            async with asyncio.timeout(SAFETY):
                return await reader.read()
        finally:
            writer.close()


@asynccontextmanager
async def _serving(settings: ProbeSettings) -> AsyncIterator[Served]:
    app: FastAPI = create_service_app(
        settings, title="probe", description="plumbing only", routers=[guarded]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            http=bounded_http_protocol(
                settings.max_header_bytes, header_timeout_seconds=settings.header_timeout_seconds
            ),
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(SAFETY * 2):
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
    try:
        yield Served(settings, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(hub_settings: HubSettings) -> AsyncIterator[Served]:
    async with _serving(ProbeSettings(hub=hub_settings)) as served:
        yield served


HEAD_TIMEOUT = 1.5
"""The head deadline of :func:`impatient`: short, so a trickle is cut off within seconds."""


@pytest.fixture
async def impatient(hub_settings: HubSettings) -> AsyncIterator[Served]:
    """A server whose heads must be complete within :data:`HEAD_TIMEOUT` seconds."""
    async with _serving(
        ProbeSettings(hub=hub_settings, header_timeout_seconds=HEAD_TIMEOUT)
    ) as served:
        yield served


def _head(*fields: tuple[str, str], complete: bool = True) -> bytes:
    lines = ["GET /guarded HTTP/1.1", "Host: probe", *(f"{n}: {v}" for n, v in fields)]
    return ("\r\n".join(lines) + ("\r\n\r\n" if complete else "\r\n")).encode()


def _status_and_problem(answer: bytes) -> tuple[bytes, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, _, headers = head.partition(b"\r\n")
    assert PROBLEM_MEDIA_TYPE.encode() in headers.lower(), answer[:300]
    problem: dict[str, object] = json.loads(body)
    return status_line, problem


async def test_a_request_within_the_limits_reaches_authentication(served: Served) -> None:
    # Fifty fields and 8 KiB: more than any kiosk or browser sends, within the limits.
    fields = [(f"x-field-{i}", "v" * 150) for i in range(50)]
    status_line, problem = _status_and_problem(await served.exchange(_head(*fields)))
    assert status_line == b"HTTP/1.1 401 Unauthorized"
    assert problem["status"] == 401


async def test_more_header_fields_than_the_limit_get_431_before_authentication(
    served: Served,
) -> None:
    fields = [(f"x-field-{i}", "v") for i in range(served.settings.max_header_count)]
    status_line, problem = _status_and_problem(await served.exchange(_head(*fields)))
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert problem["type"] == "https://kanalhub.dk/problems/headers-too-large"
    assert "header fields" in str(problem["detail"])


async def test_header_fields_larger_than_the_limit_get_431_before_authentication(
    served: Served,
) -> None:
    # Three fields of 6 KB: few fields, but more bytes than the 16 KiB limit.
    fields = [(f"x-big-{i}", "v" * 6_000) for i in range(3)]
    status_line, problem = _status_and_problem(await served.exchange(_head(*fields)))
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert problem["status"] == 431


async def test_an_endless_head_is_refused_by_the_server_once_past_its_bound(
    served: Served,
) -> None:
    # One field longer than the server's bound and never finished: no app ever sees it, the
    # server's protocol answers 431 and closes instead of reading on.
    bound = served.settings.max_header_bytes + REQUEST_LINE_ALLOWANCE
    answer = await served.exchange(_head(("x-endless", "v" * (bound + 1)), complete=False))
    status_line, problem = _status_and_problem(answer)
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert problem["type"] == "https://kanalhub.dk/problems/headers-too-large"


async def test_32_mb_of_headers_are_cut_off_long_before_the_end(served: Served) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    chunk = b"".join(b"x-field-%d: %s\r\n" % (i, b"v" * 1000) for i in range(64))  # ~64 KB
    sent = 0
    try:
        writer.write(b"GET /guarded HTTP/1.1\r\nHost: probe\r\n")
        async with asyncio.timeout(SAFETY):
            while sent < 32 * 1024 * 1024:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
    except ConnectionError:
        pass  # the server closed the connection on us: what the test wants
    finally:
        writer.close()
    # The socket buffers on both sides hold a few MB at most; had the server read on, all
    # 32 MB would have gone through.
    assert sent < 32 * 1024 * 1024
    # And the server is fine afterwards.
    status_line, _ = _status_and_problem(await served.exchange(_head()))
    assert status_line == b"HTTP/1.1 401 Unauthorized"


async def test_requests_after_the_first_on_a_kept_alive_connection_are_served(
    served: Served,
) -> None:
    # The bound restarts with every request: five heads of 10 KB each on one connection.
    fields = [(f"x-field-{i}", "v" * 1_000) for i in range(10)]
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        for _ in range(5):
            writer.write(_head(*fields))
            await writer.drain()
            async with asyncio.timeout(SAFETY):
                status_line = await reader.readline()
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            assert status_line == b"HTTP/1.1 401 Unauthorized\r\n"
    finally:
        writer.close()


HEALTHZ_START = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One response with a ``content-length`` from a kept-alive connection: status line and body."""
    async with asyncio.timeout(SAFETY):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
    return head.partition(b"\r\n")[0] + b"\r\n\r\n" + body


async def _trickle(writer: asyncio.StreamWriter, pieces: list[bytes], pause: float) -> None:
    """Send ``pieces`` one by one, ``pause`` seconds apart; stop when the server hangs up."""
    try:
        for piece in pieces:
            await asyncio.sleep(pause)
            writer.write(piece)
            await writer.drain()
    except ConnectionError:
        pass


async def test_a_head_trickling_in_is_answered_408_and_cut_off_at_the_deadline(
    impatient: Served,
) -> None:
    # One header byte every 0.3 s: 40 bytes would take 12 s; the deadline is 1.5 s.
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient.port)
    started = time.monotonic()
    writer.write(HEALTHZ_START)
    trickler = asyncio.create_task(_trickle(writer, [b"x"] * 40, pause=0.3))
    try:
        async with asyncio.timeout(SAFETY):
            answer = await reader.read()  # until the server closes the connection
        elapsed = time.monotonic() - started
    finally:
        trickler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trickler
        writer.close()
    status_line, problem = _status_and_problem(answer)
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert problem["type"] == "https://kanalhub.dk/problems/head-timeout"
    assert b"connection: close" in answer.lower()
    # A bound with a wide margin (the deadline is 1.5 s), not a benchmark: well before the
    # trickle's 12 s would have ended.
    assert elapsed < 4.0


async def test_a_connection_that_sends_nothing_is_closed_at_the_head_deadline(
    impatient: Served,
) -> None:
    # The first head's deadline runs from the connection opening, not from its first byte.
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient.port)
    started = time.monotonic()
    try:
        async with asyncio.timeout(SAFETY):
            answer = await reader.read()
    finally:
        writer.close()
    status_line, _ = _status_and_problem(answer)
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert time.monotonic() - started < 4.0


async def test_a_head_completed_within_the_deadline_is_served(impatient: Served) -> None:
    # Four pieces 0.25 s apart: the head takes about 0.75 s of its 1.5 s.
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await _trickle(writer, [b"Host: x\r\n", b"X-Slow: ", b"yes\r\n", b"\r\n"], pause=0.25)
        answer = await _read_response(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]


async def test_idle_time_between_kept_alive_requests_does_not_count_against_the_next_head(
    impatient: Served,
) -> None:
    # 2.5 s of silence after the first response: longer than the head deadline (1.5 s), shorter
    # than uvicorn's keep-alive timeout (5 s). The second head's deadline starts at its first
    # byte, so it is served on the same connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient.port)
    try:
        writer.write(HEALTHZ_START + b"\r\n")
        await writer.drain()
        first = await _read_response(reader)
        await asyncio.sleep(2.5)
        writer.write(HEALTHZ_START + b"\r\n")
        await writer.drain()
        second = await _read_response(reader)
    finally:
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), first[:200]
    assert second.startswith(b"HTTP/1.1 200 OK\r\n"), second[:200]


async def test_a_second_head_trickling_on_a_kept_alive_connection_is_answered_408(
    impatient: Served,
) -> None:
    # Line breaks between requests start no message in the parser; they still start the head
    # deadline, so CRLF every 0.3 s cannot hold a kept-alive connection open either.
    reader, writer = await asyncio.open_connection("127.0.0.1", impatient.port)
    trickler: asyncio.Task[None] | None = None
    try:
        writer.write(HEALTHZ_START + b"\r\n")
        await writer.drain()
        first = await _read_response(reader)
        started = time.monotonic()
        trickler = asyncio.create_task(_trickle(writer, [b"\r\n"] * 40, pause=0.3))
        async with asyncio.timeout(SAFETY):
            answer = await reader.read()
        elapsed = time.monotonic() - started
    finally:
        if trickler is not None:
            trickler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trickler
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), first[:200]
    status_line, _ = _status_and_problem(answer)
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert elapsed < 4.0
