"""Settings of the metrics service (environment prefix ``KANALHUB_METRICS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.contracts import Channel
from services.plumbing.settings import ServiceSettings

DEFAULT_UNIT_COSTS_DKK: dict[Channel, float] = {
    Channel.DIGITAL: 5.0,
    Channel.PHONE: 40.0,
    Channel.COUNTER: 100.0,
    Channel.KVIK: 20.0,
    Channel.MOBILE: 150.0,
}
"""Kroner per contact by channel; assumptions to be replaced by the municipality's own figures
(docs/metrics.md says where the defaults come from)."""


class MetricsSettings(ServiceSettings):
    """Where the metrics service listens and how it figures; shared hub settings in ``hub``."""

    model_config = SettingsConfigDict(env_prefix="KANALHUB_METRICS_", extra="ignore")

    service: ClassVar[str] = "metrics"
    port: int = Field(default=8004, ge=1, le=65535)
    unit_costs: dict[Channel, float] = Field(
        default_factory=lambda: dict(DEFAULT_UNIT_COSTS_DKK),
        description="Cost per contact by channel in DKK, as JSON "
        "(KANALHUB_METRICS_UNIT_COSTS='{\"phone\": 45}'); channels left out keep the default.",
    )
    share_window_days: int = Field(default=28, ge=1, le=366)
    """The window of the district-share event and of the ``28d`` Prometheus share."""
    share_event_interval_seconds: float = Field(default=60.0, gt=0)
    """How often (at most) a district-share event is published per district."""
    forecast_horizon_weeks: int = Field(default=156, ge=1, le=1040)
    """A district whose fit reaches 80 % later than this is "not on track"."""
    dashboard_page: bool = True
    """Serve the built-in dashboard page at ``/`` (aggregate figures, no role needed)."""
    forecast_weeks: int = Field(default=52, ge=4, le=260)
    """How many past weeks the forecast fits."""

    def unit_cost(self, channel: Channel) -> float:
        """The configured cost of one contact on ``channel``."""
        return self.unit_costs.get(channel, DEFAULT_UNIT_COSTS_DKK[channel])
