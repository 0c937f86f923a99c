"""Who may read a service's ``/metrics``: a decision per environment, not an accident.

``/metrics`` carries the same figures the API guards with ``metrics:read`` (district shares,
kiosks online, forecasts). ``KANALHUB_PROMETHEUS_AUTH`` says how a scrape is let in:

- ``none``: anyone who reaches the port (the development and test default; the port is on a
  developer's machine).
- ``bearer``: only ``Authorization: Bearer <KANALHUB_PROMETHEUS_TOKEN>`` (the production
  default). Prometheus sends it with ``authorization: {credentials_file: ...}`` in its scrape
  config (deploy/prometheus/prometheus.yml). Without a configured token every scrape is refused,
  so production is protected unless configured otherwise.

docs/security.md ("Public surfaces") gives the reasons.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from services.plumbing.problems import Problem


class PrometheusAuth(StrEnum):
    """How ``/metrics`` is protected (``KANALHUB_PROMETHEUS_AUTH``)."""

    NONE = "none"
    BEARER = "bearer"


def check_scrape(authorization: str | None, auth: PrometheusAuth, token: str | None) -> None:
    """Let a scrape in, or raise ``Problem`` 401: nothing to do for ``none``; for ``bearer``
    the header must carry exactly the configured token (compared in constant time)."""
    if auth is PrometheusAuth.NONE:
        return
    scheme, _, presented = (authorization or "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.encode())
    ):
        return
    raise Problem(
        401,
        "scrape-token",
        "Scrape token required",
        detail="/metrics needs Authorization: Bearer <the configured scrape token>.",
        headers={"WWW-Authenticate": "Bearer"},
        refusal="no scrape token" if not authorization else "wrong scrape token",
    )
