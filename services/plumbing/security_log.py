"""Refused authentications and authorisations, logged as security events (ASVS 7.1.1, 7.2.1,
7.2.2).

Every 401 and 403 a service answers with a :class:`~services.plumbing.problems.Problem` - the
auth dependencies' (services/plumbing/auth.py), the kiosks' device-token checks
(services/kvik), the scrape token of ``/metrics`` - and every other problem raised with a
``refusal`` (the 429 for too many unknown device tokens) is logged by the problem handler with
:func:`log_refusal` as one warning::

    {"event": "auth refused", "reason": "expired", "status": 401, "slug": "token-expired",
     "method": "POST", "route": "/entries/{entry_id}", "client": "10.0.4.7",
     "actor": null, "request_id": "4f1c...", "level": "warning", ...}

- ``reason``: why, in a few fixed words (``no token``, ``malformed authorization header``,
  ``bad signature``, ``expired``, ``wrong audience``, ``unknown device token``, ``role missing:
  kvik:admin`` ...); the problem's slug when the raiser gave none.
- ``route``: the route template, never the path as sent (ids in it stay out, and the log cannot
  be flooded with distinct values).
- ``client``: the client address as the server saw it (after any trusted proxy headers).
- ``actor``: who the token named when it verified and the refusal came after (a missing role):
  the pseudonymous id (services/plumbing/pseudonyms.py) of a person, ``kiosk:<id>`` for a
  kiosk - never the token's raw ``sub``.

Nothing of the token is ever logged - not the token, not a prefix of it, not its claims: the
``Authorization`` header is read by the auth code only, and the reasons are fixed strings.
``tests/integration/security/test_security_log.py`` proves it over a run of refused and accepted
requests of every service.
"""

from __future__ import annotations

from typing import Any, Final

import structlog
from starlette.requests import Request

# structlog directly, not plumbing.logging's get_logger (the same call): problems.py imports
# this module, and plumbing.logging imports the settings, which import problems.
log: Any = structlog.get_logger(__name__)

AUTH_REFUSED: Final = "auth refused"
"""The ``event`` of every refusal: what to search the logs (or alert) on."""

_ACTOR: Final = "actor"


def remember_actor(request: Request, actor: str) -> None:
    """Note who the request's token named, for a refusal that comes after it verified.

    Kept in the request's state (the ASGI scope), so only this request sees it.
    """
    request.state.actor = actor


def log_refusal(request: Request, *, status: int, slug: str | None, reason: str) -> None:
    """Log one refused authentication or authorisation (see the module docstring)."""
    route = request.scope.get("route")
    actor = request.scope.get("state", {}).get(_ACTOR)
    log.warning(
        AUTH_REFUSED,
        reason=reason,
        status=status,
        slug=slug,
        method=request.method,
        route=getattr(route, "path", None) or "unmatched",
        client=request.client.host if request.client is not None else None,
        actor=actor if isinstance(actor, str) else None,
    )
