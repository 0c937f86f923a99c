"""A fault-injecting HTTP/1.1 proxy for the fault suite: it sits between the simulated clients
and one or more replicas of a service and, at random (a seeded RNG), breaks requests the ways a
network between a kiosk and the hub breaks them.

It understands just enough HTTP/1.1 (request and response heads, ``Content-Length`` and chunked
bodies) to decide per request, also on a kept-alive connection, and to know when the server has
answered: a fault "after the request" happens only once the whole response is in the proxy's
hands, so the server certainly accepted what the client never hears about.

With several upstreams it is also a round-robin load balancer that skips a replica refusing
connections (a dead one), as a real one in front of the replicas would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter
from enum import StrEnum
from types import TracebackType
from typing import Self

HEAD_END = b"\r\n\r\n"


class Fault(StrEnum):
    """What the proxy can do to one request."""

    DROP_BEFORE_REQUEST = "drop before the request"
    """The connection is closed before the request is forwarded: the server never sees it."""
    DROP_AFTER_REQUEST = "drop after the request"
    """The server answered, the connection is closed instead: the client never hears."""
    DELAY_RESPONSE = "delay the response"
    """The answer is held longer than the client waits, then the connection is closed."""
    RESET_MID_RESPONSE = "reset mid-response"
    """Part of the answer is sent, then the connection is reset (TCP RST)."""


class _Closed(Exception):
    """The proxy gave up on a connection (a fault, or an upstream that cannot be reached)."""


class FaultProxy:
    """A TCP proxy speaking enough HTTP/1.1 to break individual requests at random."""

    def __init__(
        self,
        upstreams: list[str],
        rates: dict[Fault, float] | None = None,
        *,
        seed: int = 0,
        delay: float = 10.0,
        upstream_timeout: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        """``upstreams`` are base URLs (``http://host:port``); ``rates`` the chance of each
        fault per request (none: a plain load balancer); ``delay`` how long a delayed answer
        is held (longer than the client's timeout); ``upstream_timeout`` how long the proxy
        waits for an upstream's answer (a frozen replica never gives one)."""
        self._upstreams = [_host_port(url) for url in upstreams]
        self._rates = dict(rates or {})
        if sum(self._rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        self._rng = random.Random(seed)
        self._delay = delay
        self._upstream_timeout = upstream_timeout
        self._host = host
        self._next_upstream = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.injected: Counter[Fault] = Counter()
        """How often each fault was injected."""
        self.forwarded = 0
        """Requests answered normally."""

    @property
    def url(self) -> str:
        """The proxy's base URL (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://{self._host}:{port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._accept, self._host, 0)

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _choose(self) -> Fault | None:
        draw = self._rng.random()
        for fault in Fault:  # a fixed order, so a seed gives the same sequence of draws
            draw -= self._rates.get(fault, 0.0)
            if draw < 0:
                return fault
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (_Closed, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request of a client connection; False when the connection is done."""
        try:
            head = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:
            return False  # the client closed an idle kept-alive connection
        method = head.split(b" ", 1)[0]
        request = head + await _read_body(reader, _headers(head), until_eof=False)
        fault = self._choose()
        if fault is Fault.DROP_BEFORE_REQUEST:
            self.injected[fault] += 1
            return False
        response, head_length = await self._exchange(request, method)
        if fault is Fault.DROP_AFTER_REQUEST:
            self.injected[fault] += 1
            return False
        if fault is Fault.DELAY_RESPONSE:
            self.injected[fault] += 1
            # The client has given up by now; what it would get is of no use to it.
            await asyncio.sleep(self._delay)
            return False
        if fault is Fault.RESET_MID_RESPONSE:
            self.injected[fault] += 1
            writer.write(response[: head_length + (len(response) - head_length) // 2])
            await writer.drain()
            await asyncio.sleep(0.05)  # let the partial answer leave before the reset
            _reset(writer)
            return False
        writer.write(response)
        await writer.drain()
        self.forwarded += 1
        return b"connection: close" not in response[:head_length].lower()

    async def _exchange(self, request: bytes, method: bytes) -> tuple[bytes, int]:
        """Send ``request`` to an upstream (round robin, skipping refusing ones) and read the
        whole response; returns it and the length of its head."""
        reader, writer = await self._connect()
        try:
            writer.write(request)
            await writer.drain()
            async with asyncio.timeout(self._upstream_timeout):
                head = await reader.readuntil(HEAD_END)
                status = int(head.split(b" ", 2)[1])
                if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
                    body = b""
                else:
                    body = await _read_body(reader, _headers(head), until_eof=True)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            raise _Closed(f"upstream failed: {error!r}") from error
        finally:
            writer.close()
        return head + body, len(head)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for _ in range(len(self._upstreams)):
            host, port = self._upstreams[self._next_upstream % len(self._upstreams)]
            self._next_upstream += 1
            with contextlib.suppress(OSError):
                return await asyncio.open_connection(host, port)
        raise _Closed("no upstream accepts connections")


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    fields = (line.split(b":", 1) for line in lines if b":" in line)
    return {name.strip().lower(): value.strip() for name, value in fields}


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[bytes, bytes], *, until_eof: bool
) -> bytes:
    """The raw body (framing kept) after a head: by length, chunked, or (responses) to EOF."""
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    raw += trailer
                raw += b"\r\n"
                return bytes(raw)
            raw += await reader.readexactly(size + 2)
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    return await reader.read() if until_eof else b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than an orderly FIN: linger on, timeout zero."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
