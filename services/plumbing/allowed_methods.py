"""The methods a path serves, for the ``Allow`` header of a 405 answer.

Starlette builds a 405 inside the first route whose path matches, from that route's methods
alone; a path served by several routes (``GET /services`` and ``POST /services`` are two
routes) then answers with an ``Allow`` that lists one method of two. A client that trusts the
header (RFC 9110 15.5.6: it lists the methods the target resource supports) is misled.

:func:`allowed_methods` asks every route of the app whether the path matches it, as the router
does, and unions their methods: exactly the methods for which some route would take the request.
The app serves ``HEAD`` only where a route says so (FastAPI's ``APIRoute`` does not add it to
``GET``; Starlette's plain ``Route``, used for the docs pages, does), so the union holds ``HEAD``
exactly where a ``HEAD`` request would be answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import fastapi.routing
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

# As in query_guard: recent FastAPI walks included routers through ``iter_route_contexts``.
_iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)

_ORDER: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The order methods are listed in (the order of RFC 9110's method table); others follow
alphabetically."""


def _candidates(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    if _iter_route_contexts is None:
        return routes
    contexts: Iterable[Any] = _iter_route_contexts(routes)
    return contexts


def _sort_key(method: str) -> tuple[int, str]:
    return (_ORDER.index(method) if method in _ORDER else len(_ORDER), method)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str] | None:
    """Every method some route of ``routes`` serves at the request's path, in a fixed order;
    None when no route's path matches or one matching route takes any method (a mounted app
    answers its own 405s), so the caller keeps the ``Allow`` it has.
    """
    # A fresh scope: the router has already put the partially matched route into the request's
    # scope, and FastAPI's routes read that back when they match.
    probe: Scope = {
        "type": "http",
        "path": scope.get("path", "/"),
        "root_path": scope.get("root_path", ""),
        "method": scope.get("method", "GET"),
    }
    found: set[str] = set()
    for candidate in _candidates(routes):
        if isinstance(getattr(candidate, "original_route", candidate), Mount):
            continue
        match, _ = candidate.matches(probe)
        if match is Match.NONE:
            continue
        methods = candidate.methods
        if not methods:
            return None
        found.update(method.upper() for method in methods)
    if not found:
        return None
    return sorted(found, key=_sort_key)
