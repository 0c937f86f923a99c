"""Every body a kvik route parses carries the CPR guard, so a route added later cannot forget
it (the guard itself: tests/unit/plumbing/test_edge_models.py)."""

from __future__ import annotations

from fastapi.routing import APIRoute

from services.kvik.api import router
from services.kvik.schemas import SessionIn
from services.plumbing.edge_models import EdgeModel


def test_every_request_body_of_a_kvik_route_is_an_edge_model() -> None:
    bodies = {
        route.path: route.body_field.field_info.annotation
        for route in router.routes
        if isinstance(route, APIRoute) and route.body_field is not None
    }
    assert bodies  # the routes are found at all
    unguarded = {
        path: body
        for path, body in bodies.items()
        if not (isinstance(body, type) and issubclass(body, EdgeModel))
    }
    assert unguarded == {}


def test_the_session_body_read_by_hand_is_an_edge_model_too() -> None:
    # POST /sessions and the batch read SessionIn themselves (no body_field to find above).
    assert issubclass(SessionIn, EdgeModel)
