"""The fault suite's proxy does to a request what each fault says (``proxy.py``): checked against
a small upstream that counts the requests it answered. No hub needed; these run in ``make test``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.faults.proxy import Fault, FaultProxy

BODY = b"x" * 4000


@dataclass
class Upstream:
    """An HTTP/1.1 server answering every request 200 with ``BODY``, keeping connections."""

    answered: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.answered.append(head + await reader.readexactly(length))
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                    + f"content-length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, OSError):
            writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A running upstream on a free port."""
    upstream = Upstream()
    upstream.server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    async with upstream.server:
        yield upstream


async def test_without_faults_requests_on_one_connection_are_forwarded(
    upstream: Upstream,
) -> None:
    async with FaultProxy([upstream.url]) as proxy, httpx.AsyncClient(timeout=5) as client:
        answers = [await client.post(proxy.url, content=b"hello") for _ in range(3)]
    assert [(a.status_code, a.content) for a in answers] == [(200, BODY)] * 3
    assert [request.endswith(b"hello") for request in upstream.answered] == [True] * 3
    assert proxy.forwarded == 3


@pytest.mark.parametrize(
    ("fault", "reaches_the_server", "error"),
    [
        (Fault.DROP_BEFORE_REQUEST, False, httpx.RemoteProtocolError),
        (Fault.DROP_AFTER_REQUEST, True, httpx.RemoteProtocolError),
        (Fault.DELAY_RESPONSE, True, httpx.ReadTimeout),
        (Fault.RESET_MID_RESPONSE, True, httpx.TransportError),
    ],
)
async def test_a_fault_leaves_the_client_without_an_answer(
    upstream: Upstream, fault: Fault, reaches_the_server: bool, error: type[Exception]
) -> None:
    async with (
        FaultProxy([upstream.url], {fault: 1.0}, delay=2.0) as proxy,
        httpx.AsyncClient(timeout=0.5) as client,
    ):
        with pytest.raises(error):
            await client.post(proxy.url, content=b"hello")
    assert (len(upstream.answered), proxy.injected[fault]) == (int(reaches_the_server), 1)


async def test_a_reset_mid_response_delivers_part_of_the_answer(upstream: Upstream) -> None:
    async with FaultProxy([upstream.url], {Fault.RESET_MID_RESPONSE: 1.0}) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        received = bytearray()
        with pytest.raises(ConnectionResetError):
            await _read_to_the_end(reader, received)
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert 0 < received.count(b"x") < len(BODY)


async def _read_to_the_end(reader: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await reader.read(65536):
        into += chunk


async def test_a_replica_refusing_connections_is_skipped(upstream: Upstream) -> None:
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    dead = f"http://127.0.0.1:{closed.sockets[0].getsockname()[1]}"
    closed.close()
    await closed.wait_closed()
    async with FaultProxy([dead, upstream.url]) as proxy, httpx.AsyncClient(timeout=5) as client:
        answers = [(await client.get(proxy.url)).status_code for _ in range(4)]
    assert answers == [200] * 4
