"""Settings of the mobile service (environment prefix ``KANALHUB_MOBILE_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.plumbing.settings import ServiceSettings


class MobileSettings(ServiceSettings):
    """Where the mobile service listens and how it judges a day's plan; the shared hub settings
    come in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_MOBILE_", extra="ignore")

    service: ClassVar[str] = "mobile"
    port: int = Field(default=8003, ge=1, le=65535)
    # Staff move between places by bike or public transport with their kit; 15 km/h door to
    # door is a cautious city average (straight-line distance, so detours are in the speed).
    travel_speed_kmh: float = Field(default=15.0, gt=0, le=200)
    # Packing up, carrying the kit and setting it up again, on top of the travel itself.
    travel_buffer_minutes: int = Field(default=15, ge=0, le=240)
    # How far back and ahead the calendar feeds reach when the client does not say.
    calendar_past_days: int = Field(default=31, ge=0, le=3660)
    calendar_future_days: int = Field(default=366, ge=1, le=3660)
    # Where calendar apps reach this service (e.g. https://mobil.kommune.dk): the secret
    # subscribe address of a staff calendar is built on it, never on the request's Host
    # header. Unset: the link route answers the path only.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
