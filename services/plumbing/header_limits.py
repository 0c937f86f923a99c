"""Limits on the request head: too many header fields, or too many bytes of them, get 431;
a head that takes too long to arrive gets 408.

Two layers, because they guard different things:

- :func:`bounded_http_protocol` is the HTTP protocol ``kanalhub serve`` gives uvicorn. uvicorn's
  default parser (httptools) reads a request head of any size into memory before any app is
  called (32 MB of headers were read and answered 401). The bounded protocol counts the bytes
  of a head still incomplete and, past the limit, answers 431 and closes the connection, so
  memory per connection stays bounded whatever a client sends. It also gives each head a
  deadline (408 and close), which only the server can do: the app is called once the head
  is complete, so a client trickling its headers (slowloris) never reaches any middleware.
- :class:`HeaderLimit` is ASGI middleware in every service app: it counts the header fields
  and their bytes exactly as parsed (and works under any server, including test transports),
  and answers 431 problem+json before routing, so before authentication.

The answers are ``application/problem+json``, slug ``headers-too-large`` (431) or
``head-timeout`` (408).
"""

from __future__ import annotations

from asyncio import TimerHandle
from typing import Any, ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.plumbing.problems import PROBLEM_MEDIA_TYPE, ProblemDetail, problem_type

SLUG = "headers-too-large"
TITLE = "Request header fields too large"
TIMEOUT_SLUG = "head-timeout"
TIMEOUT_TITLE = "Request head too slow"

# Bytes one header line adds besides its name and value on the wire: ": " and CRLF.
_LINE_OVERHEAD = 4


def header_bytes(headers: list[tuple[bytes, bytes]] | Any) -> int:
    """The size of the header fields as they travel: name, ``: ``, value, CRLF per field."""
    return sum(len(name) + len(value) + _LINE_OVERHEAD for name, value in headers)


def _problem_body(
    detail: str,
    instance: str | None,
    request_id: str | None,
    *,
    status: int = 431,
    slug: str = SLUG,
    title: str = TITLE,
) -> bytes:
    return (
        ProblemDetail(
            type=problem_type(slug),
            title=title,
            status=status,
            detail=detail,
            instance=instance,
            request_id=request_id,
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )


class HeaderLimit:
    """Pure ASGI middleware: 431 problem+json when a request carries more than ``max_count``
    header fields or more than ``max_bytes`` of them (see :func:`header_bytes`).

    The app is not called for such a request, so nothing of it (auth, the body) is looked at.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if len(headers) > self.max_count:
            detail = f"The request has {len(headers)} header fields; the limit is {self.max_count}."
        elif (size := header_bytes(headers)) > self.max_bytes:
            detail = f"The request's header fields are {size} bytes; the limit is {self.max_bytes}."
        else:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        payload = _problem_body(
            detail, scope.get("path"), request_id if isinstance(request_id, str) else None
        )
        await send(
            {
                "type": "http.response.start",
                "status": 431,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    # The body (if any) is never read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})


class _BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that refuses a request head larger than ``max_head_bytes``
    (431), or one not complete within ``head_timeout`` seconds (408).

    httptools hands a header to the protocol only once it is complete, and a single header
    can be any size, so the callbacks cannot bound memory: instead the bytes received while a
    head is incomplete are counted. A chunk in which a new request begins is not counted
    (part of it may be the previous request's body), so a head is refused at the latest one
    socket read (at most 64 KiB in asyncio) after it passes the limit.

    The head deadline is one ``TimerHandle`` per connection, armed when the connection opens
    and when the first byte of a later request arrives, cancelled when the head is complete
    or the connection is lost. uvicorn's keep-alive timeout still governs the silence between
    requests (it stops at the first byte, which is where this deadline starts), and the body
    is timed by the app (``BodyReadTimeout``).
    """

    max_head_bytes: ClassVar[int] = 65_536
    head_timeout: ClassVar[float] = 10.0

    # Set in connection_made / on_message_begin; class defaults keep mypy and odd paths calm.
    _in_head: bool = True
    _head_bytes: int = 0
    _refused: bool = False
    # Between the end of one request's message and the end of the next one's head: the next
    # byte to arrive starts a head, even a CRLF (which httptools skips without beginning a
    # message, and which would otherwise cancel the keep-alive timeout and arm nothing).
    _awaiting_head: bool = True
    _head_deadline: TimerHandle | None = None
    _head_expired: bool = False

    def connection_made(self, transport: Any) -> None:
        self._in_head, self._head_bytes, self._refused = True, 0, False
        self._awaiting_head, self._head_expired = True, False
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes, self._awaiting_head = True, 0, True
        self._arm_head_deadline()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = self._awaiting_head = False
        self._disarm_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_expired and not self._busy() and not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self._answer_head_timeout()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            self._arm_head_deadline()
        head_was_open = self._in_head
        super().data_received(data)
        if self._in_head and head_was_open and self.transport is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None and not self._refused:
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _busy(self) -> bool:
        # ``cycle`` is the newest request and responses go out in order: while its response
        # is unfinished, a 408 written now would land inside an earlier response.
        return self.cycle is not None and not self.cycle.response_complete

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        # From now on nothing more of this head is read, whatever else happens.
        self._refused = True
        if self._busy():
            # Pipelined: answered once the responses before it are out (on_response_complete).
            self._head_expired = True
            return
        self._answer_head_timeout()

    def _answer_head_timeout(self) -> None:
        self._head_expired = False
        payload = _problem_body(
            f"The request head did not arrive within {self.head_timeout:g} seconds.",
            None,
            None,
            status=408,
            slug=TIMEOUT_SLUG,
            title=TIMEOUT_TITLE,
        )
        self._answer_and_close(b"HTTP/1.1 408 Request Timeout\r\n", payload)

    def _refuse(self) -> None:
        self._refused = True
        self._disarm_head_deadline()
        payload = _problem_body(
            f"The request head is larger than the limit of {self.max_head_bytes} bytes.",
            None,
            None,
        )
        self._answer_and_close(b"HTTP/1.1 431 Request Header Fields Too Large\r\n", payload)

    def _answer_and_close(self, status_line: bytes, payload: bytes) -> None:
        head = (
            status_line
            + b"".join(
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            )
            + b"content-type: "
            + PROBLEM_MEDIA_TYPE.encode()
            + b"\r\n"
            + b"content-length: "
            + str(len(payload)).encode()
            + b"\r\n"
            + b"connection: close\r\n\r\n"
        )
        self.transport.write(head + payload)
        self.transport.close()


REQUEST_LINE_ALLOWANCE = 8_192
"""Room for the request line on top of the header limit (common servers allow 8 KiB URLs)."""


def bounded_http_protocol(
    max_header_bytes: int, *, header_timeout_seconds: float
) -> type[HttpToolsProtocol]:
    """The uvicorn ``http`` protocol class to serve with: httptools, head bounded in size and
    in time.

    The raw head may be ``max_header_bytes`` plus :data:`REQUEST_LINE_ALLOWANCE`: this bound
    is there for memory; the exact limits are :class:`HeaderLimit`'s, in the app. A head
    (request line and header fields) must be complete within ``header_timeout_seconds`` of
    its first byte (of the connection opening, for the first request), else 408 and close.
    """
    return type(
        "BoundedHttpToolsProtocol",
        (_BoundedHttpToolsProtocol,),
        {
            "max_head_bytes": max_header_bytes + REQUEST_LINE_ALLOWANCE,
            "head_timeout": header_timeout_seconds,
        },
    )
