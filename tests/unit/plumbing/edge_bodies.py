"""The request bodies of an app's routes, for the tests that check every one carries the CPR
guard (tests/unit/<service>/test_edge_bodies.py)."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute


def request_bodies(app: FastAPI) -> dict[str, Any]:
    """``"METHOD path"`` -> the annotation of its body, for every route of ``app`` that parses
    a body (routes of included routers too)."""
    return _bodies(app.routes, "")


def _bodies(routes: Sequence[BaseRoute], prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = route.include_context  # type: ignore[attr-defined]
            found |= _bodies(included.routes, prefix + context.prefix)
        elif isinstance(route, APIRoute) and route.body_field is not None:
            for method in sorted(route.methods or ()):
                found[f"{method} {prefix}{route.path}"] = route.body_field.field_info.annotation
    return found


def unguarded(bodies: dict[str, Any], guard: type) -> dict[str, Any]:
    """The bodies that are not ``guard`` models; an optional body (``X | None``) is judged by
    ``X``."""
    return {
        route: body
        for route, body in bodies.items()
        if not all(isinstance(t, type) and issubclass(t, guard) for t in _models(body))
    }


def _models(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]
