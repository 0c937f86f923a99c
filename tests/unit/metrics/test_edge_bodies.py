"""Every body a metrics route parses carries the CPR guard, so a route added later cannot forget
it (the guard itself: tests/unit/plumbing/test_edge_models.py; the routes answering 422:
tests/integration/security/test_cpr_property.py)."""

from __future__ import annotations

from services.metrics.app import create_app
from services.metrics.desk_models import DeskDayTicketIn
from services.metrics.intake import IntakeLineIn
from services.metrics.settings import MetricsSettings
from services.plumbing.edge_models import EdgeModel
from tests.unit.plumbing.edge_bodies import request_bodies, unguarded


def test_every_request_body_of_a_metrics_route_is_an_edge_model() -> None:
    bodies = request_bodies(create_app(MetricsSettings()))
    assert bodies  # the routes are found at all
    assert unguarded(bodies, EdgeModel) == {}


def test_the_bodies_read_by_hand_are_edge_models_too() -> None:
    # The CSV intake and the CSV day file are read by hand, row by row into these models.
    assert issubclass(IntakeLineIn, EdgeModel)
    assert issubclass(DeskDayTicketIn, EdgeModel)
