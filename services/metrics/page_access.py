"""Who may open the built-in dashboard page: the ``public_page`` decision applied per request.

The page shows the figures the API guards with ``metrics:read``; whether it is open without a
token is configuration per environment (``KANALHUB_METRICS_PUBLIC_PAGE``), not an accident.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.metrics.settings import MetricsSettings, PublicPage
from services.plumbing.auth import Role, current_principal, require_role
from services.plumbing.problems import Problem

# Not in the OpenAPI document (the page is not an API), so no scheme name is shown anywhere.
_page_bearer = HTTPBearer(auto_error=False)
_metrics_reader = require_role(Role.METRICS_READ)


async def page_allowed(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_page_bearer)],
) -> None:
    """FastAPI dependency: 404 when the page is off; when protected, 401 without a token and
    403 without ``metrics:read``; nothing when open."""
    settings: MetricsSettings = request.app.state.settings
    access = settings.page_access
    if access is PublicPage.OFF:
        raise Problem(404, None, "Not Found", detail="The dashboard page is switched off.")
    if access is PublicPage.PROTECTED:
        await _metrics_reader(await current_principal(request, credentials))


PageAllowed = Annotated[None, Depends(page_allowed)]
