"""Every body a registry route parses carries the CPR guard, so a route added later cannot forget
it (the guard itself: tests/unit/plumbing/test_edge_models.py; the routes answering 422:
tests/integration/security/test_cpr_property.py)."""

from __future__ import annotations

from services.plumbing.edge_models import EdgeModel
from services.registry.app import create_app
from services.registry.schemas import EntryIn, SiteIn
from services.registry.settings import RegistrySettings
from tests.unit.plumbing.edge_bodies import request_bodies, unguarded


def test_every_request_body_of_a_registry_route_is_an_edge_model() -> None:
    bodies = request_bodies(create_app(RegistrySettings()))
    assert bodies  # the routes are found at all
    assert unguarded(bodies, EdgeModel) == {}


def test_the_bodies_read_by_hand_are_edge_models_too() -> None:
    # POST /import reads JSON or CSV itself and validates every item and row into SiteIn and
    # EntryIn (services/registry/bulk.py), so those carry the guard as well.
    assert issubclass(SiteIn, EdgeModel)
    assert issubclass(EntryIn, EdgeModel)
