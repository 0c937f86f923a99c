"""The security response headers every answer of every service carries (ASVS 14.4.4-14.4.7).

:class:`SecurityHeaders` is added once, by ``create_service_app`` (services/plumbing/http.py),
so no service can leave it out, and it sits outside every other guard of the app, so the
refusals those answer themselves (431, 413, 408, the query guard's 400) carry the headers too:

- ``X-Content-Type-Options: nosniff``: a browser takes the declared type at its word, so a
  JSON answer that echoes a name or a CSV export is never run as HTML or script.
- ``Referrer-Policy: no-referrer``: a link followed from the docs or dashboard page does not tell
  the next site which of our paths (ids in them) was open.
- ``X-Frame-Options: DENY``: no page of ours can be framed (clickjacking). HTML pages also say
  ``frame-ancestors 'none'`` in their Content-Security-Policy (``api_docs``); this covers the
  browsers that only know the older header, and every other answer.
- ``Cache-Control: no-store`` on the answer to a request with an ``Authorization`` header,
  unless the route set its own: what a token was needed for must not be kept by a browser or a
  shared cache. Public answers keep whatever caching the route chose.
- ``Strict-Transport-Security: max-age=<KANALHUB_HSTS_SECONDS>`` only when that setting is
  above 0, i.e. when the hub is served over HTTPS (by the ingress in front of it). Browsers
  ignore HSTS received over plain http, and a developer's browser that did accept it for
  localhost would then refuse every plain-http service on localhost for that long - so the
  default, 0, sends none. ``includeSubDomains`` is not sent: the other hosts of the
  municipality's domain are not the hub's to decide.

A header the route already set (a docs page's own ``Cache-Control``) is left as it is.
Pure ASGI (not Starlette's ``BaseHTTPMiddleware``): it only edits the start message, so
streamed answers (server-sent events, CSV exports) pass through untouched and unbuffered.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
"""Sent on every answer (unless the route set the header itself)."""

NO_STORE = (b"cache-control", b"no-store")
"""Sent on answers to requests with an ``Authorization`` header (unless the route chose)."""


def _has_authorization(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope.get("headers", ()))


class SecurityHeaders:
    """Pure ASGI middleware: the security response headers of the module docstring.

    ``hsts_seconds`` 0 sends no ``Strict-Transport-Security`` (plain-http deployments and
    development); above 0 it is the header's ``max-age``.
    """

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        extra = [(b"strict-transport-security", f"max-age={hsts_seconds}".encode())]
        self.always = ALWAYS + tuple(extra if hsts_seconds > 0 else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = self.always + ((NO_STORE,) if _has_authorization(scope) else ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: a response may hand over its own (possibly immutable) header list.
                headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend(pair for pair in wanted if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
