"""Settings of the metrics service (environment prefix ``KANALHUB_METRICS_``)."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.contracts import Channel
from services.contracts.target import DIGITAL_TARGET_DEADLINE, DIGITAL_TARGET_SHARE
from services.metrics.small_counts import DEFAULT_PRODUCTION_MIN_COUNT
from services.plumbing.settings import Environment, ServiceSettings

DEFAULT_UNIT_COSTS_DKK: dict[Channel, float] = {
    Channel.DIGITAL: 5.0,
    Channel.PHONE: 40.0,
    Channel.COUNTER: 100.0,
    Channel.KVIK: 20.0,
    Channel.MOBILE: 150.0,
}
"""Kroner per contact by channel; assumptions to be replaced by the municipality's own figures
(docs/metrics.md says where the defaults come from)."""

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class PublicPage(StrEnum):
    """Who may see the built-in dashboard page."""

    OPEN = "open"
    PROTECTED = "protected"
    OFF = "off"


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
    """How far ahead the forecast looks (weeks after the last full week; at least to the
    deadline): a fit reaching the target later is "not_within_horizon"."""
    target_share: float = Field(default=DIGITAL_TARGET_SHARE, gt=0, le=1)
    """The general-needs digital share to reach (``KANALHUB_METRICS_TARGET_SHARE``); the
    default is the contract's (services/contracts/target.py)."""
    target_deadline: dt.date = DIGITAL_TARGET_DEADLINE
    """The day by which to reach it (``KANALHUB_METRICS_TARGET_DEADLINE=2029-12-31``)."""
    dashboard_page: bool = True
    """Serve the built-in dashboard page at ``/`` at all (``false`` is the same as
    ``public_page=off``)."""
    public_page: PublicPage | None = None
    """Who may see the dashboard page (``KANALHUB_METRICS_PUBLIC_PAGE``): ``open`` (no token),
    ``protected`` (a ``metrics:read`` token, as the API) or ``off`` (404). Unset: open in
    development and test, protected in production (docs/security.md, "Public surfaces")."""
    public_min_count: int | None = Field(default=None, ge=0, le=1000)
    """On an open page, counts below this are shown as ``<N`` and shares built on fewer
    contacts are not shown (``KANALHUB_METRICS_PUBLIC_MIN_COUNT``; 0 shows everything).
    Unset: 10 in production, 0 in development and test. A protected page shows everything."""
    forecast_weeks: int = Field(default=52, ge=4, le=260)
    """How many past weeks the forecast fits."""
    prometheus_entries: int = Field(default=300, ge=0, le=5000)
    """At most this many entry points get their own ``entry_id`` series in Prometheus (the
    most used first); the contacts of the rest are summed per district into
    ``entry_id="other"``, so the label's cardinality stays bounded (docs/metrics.md)."""
    desk_live_days: int = Field(default=7, ge=1, le=90)
    """The live desk feed takes a ticket that ended at most this many days ago; a ticket's
    fingerprint is kept one day longer, so the same ticket can never be counted twice."""
    desk_file_days: int = Field(default=366, ge=1, le=3660)
    """A desk day file may be for a day at most this many days back; which way (live or file)
    an entry's day came in is kept one day longer."""
    desk_clock_skew_seconds: int = Field(default=300, ge=0, le=3600)
    """How far a queue system's clock may run ahead of ours before a ticket time is "in the
    future"."""

    @field_validator("target_deadline", mode="before")
    @classmethod
    def _deadline_is_a_calendar_date(cls, value: object) -> object:
        # pydantic would take a number (Unix time) for a date; a deadline is written as a day.
        if isinstance(value, dt.datetime) or not isinstance(value, str | dt.date):
            raise ValueError("the deadline is a calendar day, YYYY-MM-DD")
        if isinstance(value, str):
            try:
                if not _ISO_DAY.fullmatch(value.strip()):
                    raise ValueError(value)
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError("the deadline is a calendar day, YYYY-MM-DD") from None
        return value

    @property
    def page_access(self) -> PublicPage:
        """Who may see the page: as configured, else open outside production."""
        if not self.dashboard_page:
            return PublicPage.OFF
        if self.public_page is not None:
            return self.public_page
        if self.hub.environment is Environment.PRODUCTION:
            return PublicPage.PROTECTED
        return PublicPage.OPEN

    @property
    def page_min_count(self) -> int:
        """The small-count threshold of the page: only an open page suppresses."""
        if self.page_access is not PublicPage.OPEN:
            return 0
        if self.public_min_count is not None:
            return self.public_min_count
        if self.hub.environment is Environment.PRODUCTION:
            return DEFAULT_PRODUCTION_MIN_COUNT
        return 0

    def unit_cost(self, channel: Channel) -> float:
        """The configured cost of one contact on ``channel``."""
        return self.unit_costs.get(channel, DEFAULT_UNIT_COSTS_DKK[channel])
