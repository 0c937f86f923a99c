"""Authorization headers for tests: development tokens for a subject and its roles."""

from __future__ import annotations

from services.plumbing.auth import mint_token
from services.plumbing.settings import HubSettings


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token`` (a person's or a kiosk's)."""
    return {"Authorization": f"Bearer {token}"}


def auth(settings: HubSettings, *roles: str, subject: str) -> dict[str, str]:
    """The Authorization header of ``subject`` holding ``roles``, as the hub's development
    tokens carry them."""
    return bearer(mint_token(settings, subject, roles))
