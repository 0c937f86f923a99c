"""Unknown query parameters are refused: a typo must never widen a figure's scope unnoticed.

FastAPI ignores a query parameter an operation does not declare, so
``GET /share?period=week&date=2026-12-07&entry_id=bs-valby`` would answer with city-wide figures.
:class:`QueryGuard` is ASGI middleware that finds the operation a request is routed to (with
FastAPI's own route matching) and answers **400 problem+json** before anything of the operation
runs - no dependency, no body read, no handler - when the query string holds

- a parameter the operation does not declare (``query.entry_id``: "Unknown query parameter; this
  operation takes: period, date, district, service"), or
- a single-valued parameter more than once (``?date=2024-01-01&date=2024-02-01`` is ambiguous;
  FastAPI would silently take the last one).

What an operation declares is read from its dependant *including every sub-dependency* (an auth
dependency that reads a query parameter declares it), with pydantic query models flattened as
FastAPI flattens them. Routes outside the OpenAPI document count too: the docs page, the OpenAPI
document and ``/metrics`` take no query parameter. Left alone (``unguarded_paths``): Swagger UI's
OAuth2 redirect page, which receives whatever the authorisation server appends (``code``,
``state``, ``session_state``, ``iss``, ...; RFC 6749 lets a server add parameters), and mounted
sub-applications, whose parameters FastAPI does not know. A request that matches no route is
passed on untouched, so it still gets its 404 or 405.

The names the client sent are shown only when they are plain parameter names (letters, digits,
``_.-[]``, at most 64 characters, nothing that looks like a CPR number): a problem body never
echoes arbitrary client input.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import fastapi.routing
from fastapi._compat import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from pydantic import AliasChoices
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from services.contracts.guard import find_cpr
from services.plumbing.problems import FieldProblem, Problem

PROBLEM_SLUG: Final = "query-parameter-not-accepted"
PROBLEM_TITLE: Final = "Query parameter not accepted"

_SHOWABLE_NAME: Final = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")

# Recent FastAPI keeps each included router as one branch of the app's routes and offers
# ``iter_route_contexts`` to walk the effective routes in the order the router matches them
# (prefixes and router-level dependencies applied); older versions copy the routes into the
# app's list, which is then walked as it is.
_iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)


@dataclass(frozen=True)
class QueryContract:
    """The query parameters one operation declares."""

    names: tuple[str, ...]
    """Every accepted name, in the order the OpenAPI document lists them (the operation's own,
    then its dependencies'), aliases included."""
    repeatable: frozenset[str]
    """The names that take a list, so may be given more than once."""

    def refusals(self, query: QueryParams) -> list[FieldProblem]:
        """One FieldProblem per parameter of ``query`` this contract does not accept."""
        problems: list[FieldProblem] = []
        counts: dict[str, int] = {}
        for name, _ in query.multi_items():
            counts[name] = counts.get(name, 0) + 1
        hidden = 0
        takes = ", ".join(self.names) if self.names else None
        for name, count in counts.items():
            if name not in self.names:
                message = (
                    f"Unknown query parameter; this operation takes: {takes}"
                    if takes
                    else "Unknown query parameter; this operation takes none"
                )
            elif count > 1 and name not in self.repeatable:
                message = f"Given {count} times; this parameter takes a single value"
            else:
                continue
            if _showable(name):
                problems.append(FieldProblem(field=f"query.{name}", message=message))
            else:
                hidden += 1
        if hidden:
            problems.append(
                FieldProblem(
                    field="query",
                    message=f"{hidden} query parameter{'s' if hidden > 1 else ''} not accepted "
                    "(name not shown: not a plain parameter name)"
                    + (f"; this operation takes: {takes}" if takes else ""),
                )
            )
        return problems


TAKES_NONE: Final = QueryContract(names=(), repeatable=frozenset())


def _showable(name: str) -> bool:
    return _SHOWABLE_NAME.fullmatch(name) is not None and find_cpr(name) is None


def _query_fields(dependant: Dependant) -> Iterator[Any]:
    """The query fields of ``dependant`` and of all its sub-dependencies, as declared."""
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_fields(sub)


def _accepted_names(field: Any) -> list[str]:
    """The names under which FastAPI reads ``field`` from the query string."""
    names = [field.alias]
    alias = field.field_info.validation_alias
    if isinstance(alias, str):
        names.append(alias)
    elif isinstance(alias, AliasChoices):
        names.extend(choice for choice in alias.choices if isinstance(choice, str))
    return names


def query_contract(dependant: Dependant) -> QueryContract:
    """What an operation with this dependant takes in its query string.

    FastAPI's own ``get_flat_params`` flattens pydantic query models into their fields; it is
    given a dependant holding only the collected query fields, so that path, header and cookie
    parameters stay out.
    """
    flat = get_flat_params(Dependant(query_params=list(_query_fields(dependant))))
    names: list[str] = []
    repeatable: set[str] = set()
    for field in flat:
        for name in _accepted_names(field):
            if name not in names:
                names.append(name)
            # FastAPI's own test: a parameter is repeatable exactly when FastAPI reads it as
            # a list (``getlist``) rather than taking the last value.
            if field_annotation_is_sequence(field.field_info.annotation):
                repeatable.add(name)
    return QueryContract(names=tuple(names), repeatable=frozenset(repeatable))


def _candidates(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    if _iter_route_contexts is None:
        return routes
    contexts: Iterable[Any] = _iter_route_contexts(routes)
    return contexts


class QueryGuard:
    """Pure ASGI middleware: 400 problem+json for an undeclared or repeated single-valued query
    parameter (see the module docstring).

    ``routes`` is the app's live route list (``app.router.routes``), read at request time so
    that routes added after the middleware are guarded too. ``unguarded_paths`` are route path
    templates left alone.
    """

    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute], unguarded_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.routes = routes
        self.unguarded_paths = frozenset(unguarded_paths)
        # Keyed by the dependant's id; the dependant is kept alive beside its contract so the
        # id cannot be reused by another object.
        self._contracts: dict[int, tuple[Dependant, QueryContract]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        matched = self._route(scope)
        if matched is not None:
            route, contract = matched
            problems = contract.refusals(QueryParams(scope["query_string"]))
            if problems:
                # Labels the refusal with its route in the request metrics, as routing would.
                scope["route"] = route
                count = len(problems)
                problem = Problem(
                    400,
                    PROBLEM_SLUG,
                    PROBLEM_TITLE,
                    detail=f"{count} query parameter{' is' if count == 1 else 's are'} "
                    "not accepted by this operation; nothing was done.",
                    errors=problems,
                )
                response = problem.to_response(Request(scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[BaseRoute, QueryContract] | None:
        """The route this request goes to and its contract; None when it matches no route
        fully (404/405 follow) or goes to a route that is not guarded."""
        for candidate in _candidates(self.routes):
            match, _ = candidate.matches(scope)
            if match is not Match.FULL:
                continue
            route: BaseRoute = getattr(candidate, "original_route", candidate)
            if isinstance(route, Mount) or getattr(candidate, "path", None) in (
                self.unguarded_paths
            ):
                return None
            dependant = getattr(candidate, "dependant", None)
            if not isinstance(dependant, Dependant):
                # A plain Starlette route (/docs, /openapi.json): it declares nothing.
                return route, TAKES_NONE
            return route, self._contract(dependant)
        return None

    def _contract(self, dependant: Dependant) -> QueryContract:
        cached = self._contracts.get(id(dependant))
        if cached is not None and cached[0] is dependant:
            return cached[1]
        contract = query_contract(dependant)
        self._contracts[id(dependant)] = (dependant, contract)
        return contract
