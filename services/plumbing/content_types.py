"""A request body must come with the media type its operation takes (ASVS 13.1.5 / 13.2.5).

:class:`ContentTypeGuard` is ASGI middleware in every service app. It finds the operation a
request is routed to (FastAPI's own route matching, as ``query_guard`` does) and, when the
request carries a body, answers **415 problem+json** (``unsupported-media-type``, with an
``Accept`` header listing what the operation takes) before anything of the operation runs -
no dependency, no body read, nothing stored - unless its ``Content-Type`` is one the operation
declares:

- a pydantic body parameter: ``application/json``;
- a route that reads its body itself declares its types in ``openapi_extra["requestBody"]``
  (``text/csv`` for the CSV intakes; both ``application/json`` and ``text/csv`` for the
  registry's bulk import), and those are what it takes - the OpenAPI document and the guard
  read the same declaration.

``application/json`` also admits any ``application/*+json`` (``application/merge-patch+json``),
as FastAPI's own body parsing does. Parameters (``; charset=utf-8``) and case do not matter.

A body without any ``Content-Type`` is refused too (415): RFC 9110 lets a server guess the type
of such content, and guessing is exactly what this check exists to stop - a JSON route would
otherwise still parse a body nobody labelled. A request "has a body" when it declares a
``Content-Length`` above 0 or a ``Transfer-Encoding``; bodyless requests (``DELETE``, ``POST
.../confirm``, a ``Content-Length: 0``) and operations that declare no body are not checked,
and a request that matches no operation goes on to its 404 or 405.

Like the other edge guards (413, 431, the query guard's 400), it answers before authentication:
what an operation takes is public (its OpenAPI document), and a request refused at the edge costs
no token check and no Redis round trip.

The problem names the types the operation takes, never the type the client sent (a header is
client input; problem bodies never echo it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import fastapi.routing
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from services.plumbing.problems import Problem

PROBLEM_SLUG: Final = "unsupported-media-type"
PROBLEM_TITLE: Final = "Unsupported Media Type"
JSON: Final = "application/json"

# As in query_guard: recent FastAPI walks included routers through ``iter_route_contexts``.
_iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)


def declared_media_types(route: Any) -> tuple[str, ...]:
    """The media types an operation takes as its body, lower case; empty when it takes none.

    ``route`` is an ``APIRoute`` (or FastAPI's context of one inside an included router).
    """
    types: list[str] = []
    body_field = getattr(route, "body_field", None)
    if body_field is not None:
        types.append(str(getattr(body_field.field_info, "media_type", JSON)).lower())
    extra = getattr(route, "openapi_extra", None) or {}
    content = extra.get("requestBody", {}).get("content", {})
    types.extend(str(name).lower() for name in content if str(name).lower() not in types)
    return tuple(types)


def _media_type(header: str) -> str:
    """``type/subtype`` of a Content-Type value, lower case, without parameters."""
    return header.partition(";")[0].strip().lower()


def accepts(declared: Iterable[str], content_type: str | None) -> bool:
    """Whether a body of ``content_type`` (the header's value, or None) fits ``declared``."""
    if not content_type:
        return False
    sent = _media_type(content_type)
    for wanted in declared:
        if sent == wanted:
            return True
        if wanted == JSON and sent.startswith("application/") and sent.endswith("+json"):
            return True
    return False


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            try:
                return int(value) > 0
            except ValueError:
                return True  # the server refuses a malformed length itself
    return False


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def _candidates(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    if _iter_route_contexts is None:
        return routes
    contexts: Iterable[Any] = _iter_route_contexts(routes)
    return contexts


def unsupported(declared: Sequence[str]) -> Problem:
    """The 415 problem for an operation that takes ``declared``."""
    listed = " or ".join(
        f"{name} (or application/*+json)" if name == JSON else name for name in declared
    )
    return Problem(
        415,
        PROBLEM_SLUG,
        PROBLEM_TITLE,
        detail=f"The request body must be sent with Content-Type {listed}; nothing was done.",
        headers={"Accept": ", ".join(declared)},
    )


class ContentTypeGuard:
    """Pure ASGI middleware: 415 problem+json for a body whose ``Content-Type`` the operation
    does not take (see the module docstring).

    ``routes`` is the app's live route list (``app.router.routes``), read at request time so
    routes added after the middleware are guarded too.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._not_json: tuple[int, list[Any]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type")
        if accepts((JSON,), content_type) and not any(
            candidate.matches(scope)[0] is Match.FULL for candidate in self._routes_not_json()
        ):
            # The common case, a JSON body: only an operation that does not take JSON (a CSV
            # intake) can refuse it, and those are few; matching every route of the app for
            # every kiosk post would cost more than the check is worth.
            await self.app(scope, receive, send)
            return
        matched = self._route(scope)
        if matched is not None:
            route, declared = matched
            if declared and not accepts(declared, content_type):
                # Labels the refusal with its route in the request metrics and the security
                # log, as routing would.
                scope["route"] = route
                response = unsupported(declared).to_response(Request(scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _routes_not_json(self) -> list[Any]:
        """The operations that take a body but not JSON, worked out again when routes are
        added (they are, after the middleware, while the app is built)."""
        if self._not_json is None or self._not_json[0] != len(self.routes):
            found = [
                candidate
                for candidate in _candidates(self.routes)
                if (declared := declared_media_types(candidate)) and not accepts(declared, JSON)
            ]
            self._not_json = (len(self.routes), found)
        return self._not_json[1]

    def _route(self, scope: Scope) -> tuple[BaseRoute, tuple[str, ...]] | None:
        """The route this request goes to and the media types it takes; None when it matches
        no route fully (404/405 follow) or goes to a mounted app (the docs assets)."""
        for candidate in _candidates(self.routes):
            match, _ = candidate.matches(scope)
            if match is not Match.FULL:
                continue
            route: BaseRoute = getattr(candidate, "original_route", candidate)
            if isinstance(route, Mount):
                return None
            return route, declared_media_types(candidate)
        return None
