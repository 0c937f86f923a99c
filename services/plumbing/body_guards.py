"""ASGI middleware that guards the request body as the app reads it: its size (413) and how
long it takes to arrive (408).

Both work the same way: the app's ``receive`` is wrapped; once the body breaks the rule, the
wrapped ``receive`` raises, and the client gets the guard's problem+json answer, whatever the
app made of the failed read (FastAPI turns it into a 400), so an endpoint never acts on a
truncated, oversized or half-arrived body. The connection is closed afterwards because the rest
of the body is never read.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.plumbing.problems import PROBLEM_MEDIA_TYPE, ProblemDetail, problem_type


class BodyRuleBroken(Exception):
    """Raised from a guarded ``receive`` once the body breaks the guard's rule."""


class BodyGuard:
    """Base class: subclasses say how to watch ``receive`` and which problem to answer."""

    status: int
    slug: str
    title: str

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def refuse_at_once(self, scope: Scope) -> bool:
        """True to answer before the app is called (from the headers alone)."""
        return False

    def watch(self, receive: Receive) -> Receive:
        """A ``receive`` for one request that raises BodyRuleBroken when the rule is broken."""
        raise NotImplementedError

    def detail(self) -> str:
        """The problem's ``detail``: which rule, with its limit."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.refuse_at_once(scope):
            await self._refuse(scope, send)
            return
        watched = self.watch(receive)
        broken = started = refused = False

        async def guarded_receive() -> Message:
            nonlocal broken
            try:
                return await watched()
            except BodyRuleBroken:
                broken = True
                raise

        async def guarded_send(message: Message) -> None:
            nonlocal started, refused
            if broken and not started:
                # The app answered the failed read: ours is the true answer, and nothing the
                # app sends after it goes out.
                if not refused:
                    refused = True
                    await self._refuse(scope, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except BodyRuleBroken:
            if started:
                raise
        if broken and not refused and not started:
            # The app let the error out, or swallowed it and sent nothing.
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        payload = (
            ProblemDetail(
                type=problem_type(self.slug),
                title=self.title,
                status=self.status,
                detail=self.detail(),
                instance=scope.get("path"),
                request_id=request_id if isinstance(request_id, str) else None,
            )
            .model_dump_json(exclude_none=True)
            .encode()
        )
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})


class BodySizeLimit(BodyGuard):
    """Refuse request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app is called. A body
    without one (chunked) is counted as it streams in.
    """

    status = 413
    slug = "body-too-large"
    title = "Request body too large"

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    def refuse_at_once(self, scope: Scope) -> bool:
        declared = _content_length(scope)
        return declared is not None and declared > self.max_bytes

    def watch(self, receive: Receive) -> Receive:
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyRuleBroken
            return message

        return counting_receive

    def detail(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."


class BodyReadTimeout(BodyGuard):
    """The whole request body must arrive within ``seconds`` of the app first reading it;
    otherwise the client gets 408.

    The server waits for body bytes for ever: without this, a client that stops mid-body (or
    sends a byte now and then) holds its request, and the endpoint's memory, open without end.
    Only the body is timed; once it is complete, ``receive`` is passed through untouched (a
    streaming response waits on it for the client's disconnect). Headers arrive before any app
    is called, so a client trickling its headers is the server's (or the proxy's) to bound.
    """

    status = 408
    slug = "body-timeout"
    title = "Request body too slow"

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    def watch(self, receive: Receive) -> Receive:
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        body_done = False

        async def timed_receive() -> Message:
            nonlocal deadline, body_done
            if body_done:
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyRuleBroken from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed_receive

    def detail(self) -> str:
        return f"The request body did not arrive within {self.seconds:g} seconds."


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                # The server rejects a malformed length itself; counting still applies.
                return None
    return None
