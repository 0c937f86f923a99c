"""The metrics app's OpenAPI document (services/metrics/app.py), built without connecting."""

from __future__ import annotations

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings


def test_the_openapi_document_lists_the_routes_and_the_csv_body() -> None:
    document = create_app(MetricsSettings()).openapi()
    assert {"/share", "/share/districts", "/kvik/funnel", "/intake", "/intake/csv"} <= set(
        document["paths"]
    )
    csv_body = document["paths"]["/intake/csv"]["post"]["requestBody"]["content"]
    assert "text/csv" in csv_body
    problem = document["paths"]["/share"]["get"]["responses"]["422"]["content"]
    assert "application/problem+json" in problem
