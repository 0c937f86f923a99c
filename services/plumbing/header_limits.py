"""Limits on the request head: too many header fields, or too many bytes of them, get 431.

Two layers, because they guard different things:

- :func:`bounded_http_protocol` is the HTTP protocol ``kanalhub serve`` gives uvicorn. uvicorn's
  default parser (httptools) reads a request head of any size into memory before any app is
  called (32 MB of headers were read and answered 401). The bounded protocol counts the bytes
  of a head still incomplete and, past the limit, answers 431 and closes the connection, so
  memory per connection stays bounded whatever a client sends.
- :class:`HeaderLimit` is ASGI middleware in every service app: it counts the header fields
  and their bytes exactly as parsed (and works under any server, including test transports),
  and answers 431 problem+json before routing, so before authentication.

Both answers are ``application/problem+json`` with the slug ``headers-too-large``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.plumbing.problems import PROBLEM_MEDIA_TYPE, ProblemDetail, problem_type

SLUG = "headers-too-large"
TITLE = "Request header fields too large"

# Bytes one header line adds besides its name and value on the wire: ": " and CRLF.
_LINE_OVERHEAD = 4


def header_bytes(headers: list[tuple[bytes, bytes]] | Any) -> int:
    """The size of the header fields as they travel: name, ``: ``, value, CRLF per field."""
    return sum(len(name) + len(value) + _LINE_OVERHEAD for name, value in headers)


def _problem_body(detail: str, instance: str | None, request_id: str | None) -> bytes:
    return (
        ProblemDetail(
            type=problem_type(SLUG),
            title=TITLE,
            status=431,
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
    """uvicorn's httptools protocol that refuses a request head larger than ``max_head_bytes``.

    httptools hands a header to the protocol only once it is complete, and a single header
    can be any size, so the callbacks cannot bound memory: instead the bytes received while a
    head is incomplete are counted. A chunk in which a new request begins is not counted
    (part of it may be the previous request's body), so a head is refused at the latest one
    socket read (at most 64 KiB in asyncio) after it passes the limit.
    """

    max_head_bytes: ClassVar[int] = 65_536

    # Set in connection_made / on_message_begin; class defaults keep mypy and odd paths calm.
    _in_head: bool = True
    _head_bytes: int = 0
    _refused: bool = False

    def connection_made(self, transport: Any) -> None:
        self._in_head, self._head_bytes, self._refused = True, 0, False
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        head_was_open = self._in_head
        super().data_received(data)
        if self._in_head and head_was_open and self.transport is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        payload = _problem_body(
            f"The request head is larger than the limit of {self.max_head_bytes} bytes.",
            None,
            None,
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
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


def bounded_http_protocol(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The uvicorn ``http`` protocol class to serve with: httptools, head bounded.

    The raw head may be ``max_header_bytes`` plus :data:`REQUEST_LINE_ALLOWANCE`: this bound
    is there for memory; the exact limits are :class:`HeaderLimit`'s, in the app.
    """
    return type(
        "BoundedHttpToolsProtocol",
        (_BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_header_bytes + REQUEST_LINE_ALLOWANCE},
    )
