"""Every body a mobile route parses carries the CPR guard, so a route added later cannot forget
it (the guard itself: tests/unit/plumbing/test_edge_models.py; the routes answering 422:
tests/integration/security/test_cpr_property.py)."""

from __future__ import annotations

from services.mobile.app import create_app
from services.mobile.settings import MobileSettings
from services.plumbing.edge_models import EdgeModel
from tests.unit.plumbing.edge_bodies import request_bodies, unguarded


def test_every_request_body_of_a_mobile_route_is_an_edge_model() -> None:
    bodies = request_bodies(create_app(MobileSettings()))
    assert bodies  # the routes are found at all
    assert unguarded(bodies, EdgeModel) == {}
